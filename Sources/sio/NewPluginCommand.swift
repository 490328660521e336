import ArgumentParser
import Foundation
import SioPluginHost

/// `sio new-plugin NAME`: a plugin project that builds, installs and loads as it is, outside the
/// server's tree. C: the source, a Makefile with the flags the host expects, and the ABI header
/// this `sio` speaks. Swift: a package that depends on the plugin SDK alone (`sio-plugin-sdk`,
/// by path or by a URL and version), never on the server's dependencies.
struct NewPluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-plugin", abstract: "Create a ready-to-build plugin project outside the server's tree.")

    enum Language: String, ExpressibleByArgument, CaseIterable {
        case c, swift
    }

    @Argument(help: "The plugin's name: letters, digits, '-' and '_', starting with a letter.") var name: String
    @Option(help: "The language of the project.") var lang: Language = .c
    @Option(help: "Where to create it (default: ./NAME); must not exist or be empty.") var dir: String?
    @Option(help: "Swift: the SDK package's directory (default: sio-plugin-sdk of the checkout sio was built in).")
    var sdk: String?
    @Option(help: "Swift: depend on the SDK at this git URL (scripts/publish-sdk makes one) instead of a directory.")
    var sdkURL: String?
    @Option(help: "Swift: the lowest SDK version to accept with --sdk-url.") var sdkFrom: String = "\(SioABI.major).\(SioABI.minor).0"

    func validate() throws {
        guard let first = name.unicodeScalars.first, first.properties.isAlphabetic, first.isASCII, name.count <= 64,
              name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == "_") })
        else {
            throw ValidationError("a plugin name is 1 to 64 ASCII letters, digits, '-' and '_', starting with a letter: \(name)")
        }
        if sdkURL != nil && sdk != nil { throw ValidationError("give --sdk or --sdk-url, not both") }
    }

    func run() throws {
        let directory = URL(fileURLWithPath: dir ?? name).standardizedFileURL
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: directory.path), !existing.isEmpty {
            throw ValidationError("\(directory.path) exists and is not empty")
        }
        switch lang {
        case .c: try createC(in: directory)
        case .swift: try createSwift(in: directory)
        }
    }

    private func createC(in directory: URL) throws {
        try write([
            ("\(name).c", fill(PackageResources.plugin_c_template)),
            ("Makefile", fill(PackageResources.Makefile_template)),
            ("include/sio_plugin.h", PackageResources.sio_plugin_h),
        ], in: directory)
        print("""
            created \(directory.path):
              \(name).c              the plugin (answers "hello", greets on connect)
              Makefile               make; make install PLUGINS=DIR; make check
              include/sio_plugin.h   the plugin ABI \(SioABI.major).\(SioABI.minor) this sio speaks
            """)
    }

    private func createSwift(in directory: URL) throws {
        let dependency: String
        if let sdkURL {
            dependency = ".package(url: \(Self.quoted(sdkURL)), from: \(Self.quoted(sdkFrom)))"
        } else {
            guard let path = sdk.map({ URL(fileURLWithPath: $0).standardizedFileURL.path }) ?? Self.checkoutSDK() else {
                throw ValidationError("cannot find sio-plugin-sdk beside this sio: give --sdk DIR or --sdk-url URL")
            }
            guard FileManager.default.fileExists(atPath: path + "/Package.swift") else {
                throw ValidationError("\(path) holds no Package.swift: not the plugin SDK")
            }
            dependency = ".package(path: \(Self.quoted(path)))"
        }
        let module = name.replacingOccurrences(of: "-", with: "_")
        let package = fill(PackageResources.Package_swift_template, extra: ["@MODULE@": module, "@SDK@": dependency])
        try write([
            ("Package.swift", package),
            ("Sources/\(module)/Plugin.swift", fill(PackageResources.Plugin_swift_template, extra: ["@MODULE@": module])),
        ], in: directory)
        print("""
            created \(directory.path):
              Package.swift                depends on the plugin SDK only
              Sources/\(module)/Plugin.swift   the plugin (answers "hello", greets on connect)
            build: swift build -c release   (writes .build/release/lib\(name).so)
            """)
    }

    /// The SDK of the checkout this binary was built in (`.build/<triple>/<config>/sio`).
    private static func checkoutSDK() -> String? {
        guard let executable = ServeCommand.executablePath else { return nil }
        var directory = (executable as NSString).deletingLastPathComponent
        for _ in 0..<4 {
            directory = (directory as NSString).deletingLastPathComponent
            let candidate = directory + "/sio-plugin-sdk"
            if FileManager.default.fileExists(atPath: candidate + "/Package.swift") { return candidate }
        }
        return nil
    }

    private static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private func write(_ files: [(String, [UInt8])], in directory: URL) throws {
        for (path, content) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content).write(to: url)
        }
    }

    private func fill(_ template: [UInt8], extra: [String: String] = [:]) -> [UInt8] {
        var text = String(decoding: template, as: UTF8.self).replacingOccurrences(of: "@NAME@", with: name)
        for (key, value) in extra { text = text.replacingOccurrences(of: key, with: value) }
        return Array(text.utf8)
    }
}
