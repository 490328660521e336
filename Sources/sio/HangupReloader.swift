import Logging
import ServiceLifecycle
import SioPluginHost
import UnixSignals

/// SIGHUP reloads the plugins, as daemons re-read their configuration on it.
struct HangupReloader: Service {
    let host: PluginHost
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            logger.info("SIGHUP: reloading plugins")
            await host.reload()
        }
    }
}
