import CSioPlugin
import Atomics
import Foundation
import Logging
import NIOConcurrencyHelpers
import SocketIOCodec
import SocketIOServer

/// Reloading: bringing the loaded set in line with the plugins directory.
extension PluginHost {
    /// Brings the loaded set in line with the plugins directory: new files load, changed files
    /// replace their plugin, removed files retire theirs, unchanged ones stay as they are.
    ///
    /// The sequence (docs/operations.md, "Reload sequence"):
    /// 1. Each changed file is checked, mapped and described. A file refused here never
    ///    touches the version it would replace, and nothing pauses.
    /// 2. Dispatch pauses: new events wait while the serving set's running events finish
    ///    (nested events run on the set their outer event pinned, so they never wait).
    /// 3. Each replaced version's `retire` runs, with none of its handlers running or to come,
    ///    so the state it hands on counts every event it handled; the new version's `init`
    ///    receives it. Removed plugins are retired.
    /// 4. The new set is installed and dispatch resumes; retired C images are unmapped then,
    ///    since no event can reach them any more.
    ///
    /// Nothing changed: nothing pauses and nothing is retired.
    @discardableResult
    public func reload() -> [PluginLoadReport] {
        reloadLock.withLock {
            let reports = reloadLocked()
            reloadHistory.record(reports)
            return reports
        }
    }

    /// `reload()` for async callers (the watcher, SIGHUP, the admin endpoint): it runs on a
    /// thread of its own, since it blocks (the probe child, the pause) and a task must not
    /// block the cooperative pool.
    @discardableResult
    public func reload() async -> [PluginLoadReport] {
        await withCheckedContinuation { continuation in
            reloadQueue.async { continuation.resume(returning: self.reload()) }
        }
    }

    private struct Change {
        var file: String
        var prepared: PluginLoader.Prepared
        var existing: LoadedPlugin?
        /// Initialised before the pause: the build has `adopt`.
        var initialised: LoadedPlugin?
    }

    private func reloadLocked() -> [PluginLoadReport] {
        guard let directory = configuration.directory else { return [] }
        do {
            try PluginFileCheck.check(directory, what: "plugins directory")
        } catch {
            logger.error("plugin refused: \(directory): \(error)")
            return [PluginLoadReport(file: directory, outcome: .refused(error.description))]
        }
        let all = PluginFile.list(directory)
        let isolatedReports = reloadIsolatedLocked(files: all.filter(runsIsolated))
        guard !configuration.isolated else { return isolatedReports }
        return isolatedReports + reloadInProcessLocked(files: all.filter { !runsIsolated($0) })
    }

    /// Isolated: with `--isolate-plugins`, or for a file named `NAME.isolated.so`.
    func runsIsolated(_ file: String) -> Bool {
        configuration.isolated || file.hasSuffix(PluginFile.isolatedSuffix)
    }

    private func reloadInProcessLocked(files: [String]) -> [PluginLoadReport] {
        let serving = current.withLockedValue { $0 }.plugins
        var reports: [String: PluginLoadReport] = [:]
        var changes: [Change] = []
        for file in files {
            let existing = serving.first(where: { $0.file == file })
            guard let data = FileManager.default.contents(atPath: file).map({ [UInt8]($0) }) else {
                reports[file] = refuse(file, "cannot read the file")
                continue
            }
            if let existing, existing.contentHash == PluginFile.hash(data) {
                reports[file] = PluginLoadReport(file: file, outcome: .unchanged(existing.description))
                continue
            }
            do {
                let prepared = try loader.prepare(file: file, data: data)
                // An ABI 1.1 build runs init now, while its predecessor serves untouched.
                let initialised = prepared.adopt == nil ? nil : try loader.initialise(prepared, host: self, previousState: [])
                changes.append(Change(file: file, prepared: prepared, existing: existing, initialised: initialised))
            } catch {
                reports[file] = refuse(file, error.description)
            }
        }
        let removed = serving.filter { !files.contains($0.file) }
        guard !changes.isEmpty || !removed.isEmpty else { return files.compactMap { reports[$0] } }

        var retired: [LoadedPlugin] = []
        let paused = ContinuousClock.now
        let drained: Bool = current.withLockedValue { set in
            guard drain(set) else { return false }
            set = handOver(changes, removed: removed, files: files, from: set, reports: &reports, retired: &retired)
            return true
        }
        let pause = ContinuousClock.now - paused
        guard drained else {
            for change in changes {
                _ = change.initialised?.retire()
                change.prepared.image.close()
                reports[change.file] = refuse(change.file, "handlers of the serving version ran longer than \(configuration.drainTimeout) and the reload was not done; the serving version stays")
            }
            return files.compactMap { reports[$0] } + removed.map { PluginLoadReport(file: $0.file, outcome: .refused("not removed: the reload was not done")) }
        }
        for plugin in retired { plugin.image.close() }
        logSwitch(reports, files: files + removed.map(\.file), pause: pause)
        return files.compactMap { reports[$0] } + removed.compactMap { reports[$0.file] }
    }

    /// Steps 3 and 4 of the sequence, with dispatch paused: retires what is replaced or removed,
    /// hands each state on, and returns the set to install.
    private func handOver(_ changes: [Change], removed: [LoadedPlugin], files: [String], from set: PluginSet,
                          reports: inout [String: PluginLoadReport], retired: inout [LoadedPlugin]) -> PluginSet {
        var replacements: [String: LoadedPlugin] = [:]
        for change in changes {
            let state = change.existing?.retire() ?? []
            if let existing = change.existing { retired.append(existing) }
            let plugin: LoadedPlugin
            if let initialised = change.initialised {
                PluginLoader.hand(state, to: change.prepared.adopt!, of: initialised)
                plugin = initialised
            } else {
                do {
                    plugin = try loader.initialise(change.prepared, host: self, previousState: state)
                } catch {
                    reports[change.file] = refuse(change.file, "\(error)")
                    if let existing = change.existing, let restarted = restart(existing, state: state) {
                        replacements[change.file] = restarted
                    }
                    continue
                }
            }
            replacements[change.file] = plugin
            reports[change.file] = PluginLoadReport(
                file: change.file, outcome: change.existing == nil ? .loaded(plugin.description) : .reloaded(plugin.description))
        }
        for plugin in removed {
            _ = plugin.retire()
            retired.append(plugin)
            reports[plugin.file] = PluginLoadReport(file: plugin.file, outcome: .removed)
        }
        let changed = Set(changes.map(\.file))
        return PluginSet(files.compactMap { file in
            replacements[file] ?? (changed.contains(file) ? nil : set.plugins.first(where: { $0.file == file }))
        }, runners: set.runners)
    }

    private func logSwitch(_ reports: [String: PluginLoadReport], files: [String], pause: Duration) {
        for file in files {
            guard let report = reports[file] else { continue }
            switch report.outcome {
            case .loaded(let description), .reloaded(let description):
                logger.info("plugin \(report.outcome.summary)", metadata: [
                    "plugin": "\(description.name) \(description.version) (ABI \(description.abi)) from \(file)",
                    "handlers": "\(description.handlers.count)", "pause_us": "\(pause.microseconds)"])
            case .removed:
                logger.info("plugin removed", metadata: ["plugin": "\(file)", "pause_us": "\(pause.microseconds)"])
            default:
                break
            }
        }
    }

    private func refuse(_ file: String, _ reason: String) -> PluginLoadReport {
        logger.error("plugin refused: \(file): \(reason)")
        return PluginLoadReport(file: file, outcome: .refused(reason))
    }

    /// A retired version whose successor failed to initialise: its build starts afresh from the
    /// state it handed over, so the plugin keeps serving and its count stays exact.
    private func restart(_ retired: LoadedPlugin, state: [UInt8]) -> LoadedPlugin? {
        do {
            let plugin = try loader.load(file: retired.file, data: retired.data, host: self, previousState: state)
            logger.warning("plugin restarted from its handed-over state after its successor was refused",
                           metadata: ["plugin": "\(plugin.summary)"])
            return plugin
        } catch {
            logger.error("plugin lost: its successor was refused and it could not restart: \(error)", metadata: ["plugin": "\(retired.summary)"])
            return nil
        }
    }

    /// Waits, holding the set's lock so that no new event starts, until no event runs on `set`.
    ///
    /// It spins rather than waits on a condition: the pause lasts as long as the longest running
    /// handler (0.13 ms at p99, measured), and a condition would cost every event a check of
    /// whether a reload is waiting.
    private func drain(_ set: PluginSet) -> Bool {
        let deadline = ContinuousClock.now + configuration.drainTimeout
        var spins = 0
        while set.inFlight.load(ordering: .acquiring) > 0 {
            if ContinuousClock.now > deadline { return false }
            spins += 1
            if spins < 200 { sched_yield() } else { usleep(50) }
        }
        return true
    }

    public var descriptions: [PluginDescription] {
        let set = current.withLockedValue { $0 }
        return set.plugins.map(\.description) + set.runners.map(\.description)
    }

    /// Each file's last reload outcome, refused files and removed ones included.
    public var lastReloads: [String: ReloadRecord] { reloadHistory.last }
}
