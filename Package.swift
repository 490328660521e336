// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "sio",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "sio", targets: ["sio"]),
        .library(name: "SocketIOCodec", targets: ["SocketIOCodec"]),
        .library(name: "SocketIOServer", targets: ["SocketIOServer"]),
        .library(name: "SioAdmin", targets: ["SioAdmin"]),
        .library(name: "SioPlugin", targets: ["SioPlugin"]),
        .library(name: "EchoSwiftPlugin", type: .dynamic, targets: ["EchoSwiftPlugin"]),
        .library(name: "ChatSwiftPlugin", type: .dynamic, targets: ["ChatSwiftPlugin"]),
        .library(name: "RelaySwiftPlugin", type: .dynamic, targets: ["RelaySwiftPlugin"]),
        .library(name: "SwiftProbePlugin", type: .dynamic, targets: ["SwiftProbePlugin"]),
        .library(name: "SwiftVersionedPlugin", type: .dynamic, targets: ["SwiftVersionedPlugin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Engine.IO v4 / Socket.IO v5 wire formats. Pure: no I/O, no event loops.
        .target(
            name: "SocketIOCodec",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Transports, sessions, heartbeats and namespaces on SwiftNIO.
        .target(
            name: "SocketIOServer",
            dependencies: [
                "SocketIOCodec",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Channel patterns on RE2 (Debian's libre2-dev): matching in time linear in the name.
        .target(name: "CSioRegex", linkerSettings: [.linkedLibrary("re2")]),
        .target(name: "CSioSystem"),
        // The operator's HTTP endpoint: a loopback JSON listener and the policy that guards it.
        .target(
            name: "SioAdmin",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Several processes as one server: LISTEN/NOTIFY through PostgreSQL, and the presence
        // they share. Only `sio` links it; the server module knows a `ClusterLink` and no database.
        .target(
            name: "SioCluster",
            dependencies: [
                "SocketIOServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The C ABI header, as a Swift module for the host and the Swift SDK.
        .systemLibrary(name: "CSioPlugin", path: "sio-plugin-sdk/Sources/CSioPlugin"),
        // Loads handler plugins and turns server events into handler calls.
        .target(
            name: "SioPluginHost",
            dependencies: [
                "SocketIOServer", "SocketIOCodec", "CSioPlugin", "CSioRegex", "CSioSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The Swift handler SDK: depends on the C header only, so a Swift plugin carries no
        // copy of the server's modules.
        .target(name: "SioPlugin", dependencies: ["CSioPlugin"], path: "sio-plugin-sdk/Sources/SioPlugin"),
        .target(name: "EchoSwiftPlugin", dependencies: ["SioPlugin"], path: "Plugins/echo-swift"),
        .target(name: "ChatSwiftPlugin", dependencies: ["SioPlugin"], path: "Plugins/chat-swift"),
        .target(name: "RelaySwiftPlugin", dependencies: ["SioPlugin"], path: "Plugins/relay-swift"),
        .target(name: "SwiftProbePlugin", dependencies: ["SioPlugin"], path: "Tests/plugins/swift-probe"),
        .target(name: "SwiftVersionedPlugin", dependencies: ["SioPlugin"], path: "Tests/plugins/swift-versioned"),
        .executableTarget(
            name: "sio",
            dependencies: [
                "SocketIOServer", "SioPluginHost", "SocketIOCodec", "SioAdmin", "SioCluster",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The admin page and the plugin template (with the ABI header), compiled into the
            // binary: nothing to install beside it.
            resources: [
                .embedInCode("AdminPage/index.html"), .embedInCode("AdminPage/admin.js"), .embedInCode("AdminPage/admin.css"),
                .embedInCode("PluginTemplate/plugin.c.template"), .embedInCode("PluginTemplate/Makefile.template"),
                .embedInCode("PluginTemplate/sio_plugin.h"), .embedInCode("PluginTemplate/Package.swift.template"),
                .embedInCode("PluginTemplate/Plugin.swift.template"),
            ]
        ),
        // A server with a scripted application, driven by the interop tests.
        .executableTarget(
            name: "sio-interop-server",
            dependencies: [
                "SocketIOServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/interop/sio-interop-server"
        ),
        // The load generator of the benchmarks (benchmarks/run).
        .executableTarget(
            name: "sio-load",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "benchmarks/sio-load"
        ),
        .testTarget(name: "SocketIOCodecTests", dependencies: ["SocketIOCodec"]),
        .testTarget(name: "SioAdminTests", dependencies: ["SioAdmin"]),
        .testTarget(name: "SioClusterTests", dependencies: ["SioCluster", "SocketIOServer"]),
        .testTarget(name: "SioPluginTests", dependencies: ["SioPlugin"]),
        .testTarget(name: "SioPluginHostTests", dependencies: ["SioPluginHost", "SocketIOServer", "SocketIOCodec", "CSioPlugin"]),
        .testTarget(
            name: "SocketIOServerTests",
            dependencies: [
                "SocketIOServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
