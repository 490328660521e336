#if canImport(Glibc)
import Glibc
#endif

/// Refuses to load code that someone other than the server's user (or root) could have
/// written: a group- or world-writable directory or file, or one owned by another user.
enum PluginFileCheck {
    static func check(_ path: String, what: String) throws(PluginLoadError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw .unsafePermissions("cannot stat \(what) \(path)")
        }
        if info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            throw .unsafePermissions("\(what) \(path) is writable by group or others (chmod go-w)")
        }
        if info.st_uid != 0 && info.st_uid != getuid() {
            throw .unsafePermissions("\(what) \(path) is owned by uid \(info.st_uid), neither root nor the server's user")
        }
    }

    /// A plugin file, and, when it is a symbolic link, the file it resolves to and the directory
    /// holding that file: a link to a file in `/tmp` is code anyone could have replaced.
    static func checkPluginFile(_ path: String) throws(PluginLoadError) {
        try check(path, what: "plugin file")
        var link = stat()
        guard lstat(path, &link) == 0, link.st_mode & S_IFMT == S_IFLNK else { return }
        guard let resolved = realpath(path, nil) else {
            throw .unsafePermissions("cannot resolve the link \(path)")
        }
        let target = String(cString: resolved)
        free(resolved)
        let directory = target.lastIndex(of: "/").map { String(target[..<$0]) }.flatMap { $0.isEmpty ? "/" : $0 } ?? "."
        try check(directory, what: "the link target's directory")
    }
}
