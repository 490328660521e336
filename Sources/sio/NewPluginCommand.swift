import ArgumentParser
import Foundation
import SioPluginHost

/// `sio new-plugin NAME`: a plugin project that builds, installs and loads as it is, outside the
/// server's tree: the source, a Makefile with the flags the host expects, and the ABI header
/// this `sio` speaks, so the project needs nothing else from this repository.
struct NewPluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-plugin", abstract: "Create a ready-to-build plugin project (C) outside the server's tree.")

    enum Language: String, ExpressibleByArgument, CaseIterable {
        case c
    }

    @Argument(help: "The plugin's name: letters, digits, '-' and '_', starting with a letter.") var name: String
    @Option(help: "The language of the project.") var lang: Language = .c
    @Option(help: "Where to create it (default: ./NAME); must not exist or be empty.") var dir: String?

    func validate() throws {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic, first.isASCII, name.count <= 64,
              name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") })
        else {
            throw ValidationError("a plugin name is 1 to 64 ASCII letters, digits, '-' and '_', starting with a letter: \(name)")
        }
    }

    func run() throws {
        let directory = URL(fileURLWithPath: dir ?? name).standardizedFileURL
        let manager = FileManager.default
        if let existing = try? manager.contentsOfDirectory(atPath: directory.path), !existing.isEmpty {
            throw ValidationError("\(directory.path) exists and is not empty")
        }
        try manager.createDirectory(at: directory.appendingPathComponent("include"), withIntermediateDirectories: true)
        let files: [(String, [UInt8])] = [
            ("\(name).c", fill(PackageResources.plugin_c_template)),
            ("Makefile", fill(PackageResources.Makefile_template)),
            ("include/sio_plugin.h", PackageResources.sio_plugin_h),
        ]
        for (path, content) in files {
            try Data(content).write(to: directory.appendingPathComponent(path))
        }
        print("""
            created \(directory.path):
              \(name).c              the plugin (answers "hello", greets on connect)
              Makefile               make; make install PLUGINS=DIR; make check
              include/sio_plugin.h   the plugin ABI \(SioABI.major).\(SioABI.minor) this sio speaks
            """)
    }

    private func fill(_ template: [UInt8]) -> [UInt8] {
        Array(String(decoding: template, as: UTF8.self).replacingOccurrences(of: "@NAME@", with: name).utf8)
    }
}
