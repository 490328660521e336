import CSioPlugin
import Foundation
import Logging

/// Reloading in isolated mode: each file's plugin is a `PluginRunner` that keeps its identity
/// across versions; a new version's process starts with the state its predecessor handed over.
extension PluginHost {
    func reloadIsolatedLocked(files: [String]) -> [PluginLoadReport] {
        let serving = current.withLockedValue { $0 }.runners
        var reports: [PluginLoadReport] = []
        var next: [PluginRunner] = []
        for file in files {
            let existing = serving.first(where: { $0.file == file })
            guard let data = FileManager.default.contents(atPath: file).map({ [UInt8]($0) }) else {
                reports.append(refuseIsolated(file, "cannot read the file"))
                if let existing { next.append(existing) }
                continue
            }
            if let existing, existing.contentHash == PluginFile.hash(data) {
                reports.append(PluginLoadReport(file: file, outcome: .unchanged(existing.description)))
                next.append(existing)
                continue
            }
            do {
                try PluginFileCheck.checkPluginFile(file)
            } catch {
                reports.append(refuseIsolated(file, error.description))
                if let existing { next.append(existing) }
                continue
            }
            if let existing {
                let outcome = existing.replace(with: data)
                reports.append(outcome)
                next.append(existing)
                continue
            }
            let runner = PluginRunner(file: file, data: data, host: self)
            noteRunner()
            do {
                try runner.start(state: [])
                reports.append(PluginLoadReport(file: file, outcome: .loaded(runner.description)))
                logger.info("plugin loaded", metadata: [
                    "plugin": "\(runner.summary) (ABI \(runner.abi)) from \(file)", "handlers": "\(runner.handlers.count)", "isolated": "yes"])
                next.append(runner)
            } catch {
                reports.append(refuseIsolated(file, "\(error)"))
            }
        }
        // In-process events may be pinned to the serving set: a new set object shares its
        // in-flight count, and none is made when no runner changed.
        if next.count != serving.count || zip(next, serving).contains(where: { $0 !== $1 }) {
            current.withLockedValue { set in
                set = PluginSet(set.plugins, runners: next, sharing: set.inFlight)
            }
        }
        for runner in serving where !files.contains(runner.file) {
            _ = runner.retire()
            reports.append(PluginLoadReport(file: runner.file, outcome: .removed))
            logger.info("plugin removed", metadata: ["plugin": "\(runner.file)"])
        }
        return reports
    }

    func refuseIsolated(_ file: String, _ reason: String) -> PluginLoadReport {
        logger.error("plugin refused: \(file): \(reason)")
        return PluginLoadReport(file: file, outcome: .refused(reason))
    }
}
