import Foundation
import Logging

extension PluginHost {
    /// What loading `file` into a server would do, without a server: the same checks, probe,
    /// mapping and `init` as a reload, on a private copy in a directory of its own, so only the
    /// file itself (content, permissions, owner) is judged. `init` runs in this process: call it
    /// from a process that may crash (`sio check-plugin` runs it in a child).
    public static func inspect(file: String, probe: PluginProbe?) -> PluginLoadReport {
        do {
            try PluginFileCheck.checkPluginFile(file)
        } catch {
            return PluginLoadReport(file: file, outcome: .refused(error.description))
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            return PluginLoadReport(file: file, outcome: .refused("cannot read the file"))
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sio-check-\(getpid())-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("plugin.so").path
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            guard FileManager.default.createFile(atPath: copy, contents: data, attributes: [.posixPermissions: 0o755]) else {
                return PluginLoadReport(file: file, outcome: .refused("cannot copy the file to \(directory.path)"))
            }
        } catch {
            return PluginLoadReport(file: file, outcome: .refused("cannot copy the file: \(error)"))
        }
        var configuration = Configuration(directory: directory.path)
        configuration.probe = probe
        configuration.messageLogFormat = nil
        configuration.handlerWarnThreshold = nil
        var logger = Logger(label: "sio-check-plugin")
        logger.logLevel = .critical
        guard let host = try? PluginHost(configuration: configuration, logger: logger) else {
            return PluginLoadReport(file: file, outcome: .refused("cannot start a plugin host"))
        }
        let report = host.loadAll().first ?? PluginLoadReport(file: file, outcome: .refused("not loaded"))
        return PluginLoadReport(file: file, outcome: report.outcome)
    }
}
