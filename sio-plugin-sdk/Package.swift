// swift-tools-version:6.0
// The Swift SDK for sio handler plugins, on its own: a plugin package depends on this and
// nothing else (no SwiftNIO, no server). The C header it wraps is the plugin ABI itself
// (`Sources/CSioPlugin/sio_plugin.h`, also `include/sio_plugin.h` in the sio repository).
import PackageDescription

let package = Package(
    name: "sio-plugin-sdk",
    products: [
        .library(name: "SioPlugin", targets: ["SioPlugin"]),
    ],
    targets: [
        .systemLibrary(name: "CSioPlugin", path: "Sources/CSioPlugin"),
        .target(name: "SioPlugin", dependencies: ["CSioPlugin"]),
    ],
    swiftLanguageModes: [.v6]
)
