import ClusterConfig
import ClusterSQL
import Foundation
import MariaDBBackend
import Memcached
import NIOCore
import PostgresBackend
import RESP
import Redis
import SQLCore

/// Every parser that takes outside input, as a function of raw bytes that must
/// never crash or hang (libFuzzer, with AddressSanitizer, looks for both).
enum FuzzTarget: String, CaseIterable, Sendable {
    case resp, memcached, config
    case postgresDSN = "postgres-dsn"
    case mariadbDSN = "mariadb-dsn"
    case redisURL = "redis-url"
    case redaction, placeholders
    case statsJSON = "stats-json"

    /// The target named by `$FUZZ_TARGET` (libFuzzer's own main takes no argument of ours).
    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            fatalError("set FUZZ_TARGET to one of: \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return target
    }()

    func run(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        switch self {
        case .resp:
            var buffer = ByteBuffer(bytes: bytes)
            var parser = RESPParser()
            while let value = try? parser.parse(&buffer) { _ = value }
        case .memcached:
            var buffer = ByteBuffer(bytes: bytes)
            let parser = MetaParser()
            while let response = try? parser.parse(&buffer) { _ = response }
        case .config:
            _ = try? ConfigurationLoader.parse(text, file: "fuzz.toml", baseDirectory: "/tmp", environment: ["FUZZ": "value"])
        case .postgresDSN:
            _ = try? PostgresConfiguration(dsn: text)
        case .mariadbDSN:
            _ = try? MariaDBConfiguration(dsn: text)
        case .redisURL:
            if let configuration = try? RedisConfiguration(url: text) { _ = configuration.description }
        case .redaction:
            // Redacting twice changes nothing more: the first pass left no secret to find.
            let once = DSNRedaction.redact(text)
            precondition(
                DSNRedaction.redact(once) == once || once == DSNRedaction.unparsable || once.hasSuffix("<unparsable>"),
                "redaction is not stable")
        case .placeholders:
            let (numbered, count) = SQLPlaceholders.numbered(text)
            precondition(count >= 0 && (count > 0 || !numbered.contains("$1") || text.contains("$1")), "a placeholder from nowhere")
        case .statsJSON:
            // What decodes encodes again, and that text decodes to the same statistics.
            let decoder = JSONDecoder()
            let encoder = JSONEncoder()
            decoder.dateDecodingStrategy = .iso8601  // as `clustersql stats --json` writes them
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys]
            guard let statistics = try? decoder.decode(ClusterStatistics.self, from: Data(bytes)),
                let encoded = try? encoder.encode(statistics)
            else { return }
            let again = try? decoder.decode(ClusterStatistics.self, from: encoded)
            precondition(again.flatMap { try? encoder.encode($0) } == encoded, "statistics do not survive a JSON round trip")
        }
    }
}

/// libFuzzer's entry point: one input for the selected target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.selected.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if FUZZING
    /// libFuzzer's driver. SwiftPM gives an executable's entry point a name of its
    /// own, so libFuzzer's `main` cannot be used; ours calls the driver instead.
    @_silgen_name("LLVMFuzzerRunDriver")
    func runFuzzerDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// With `-DFUZZING -sanitize=fuzzer,address` (scripts/fuzz.sh): libFuzzer on the target named by `$FUZZ_TARGET`.
    @main
    struct FuzzDriver {
        static func main() {
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(runFuzzerDriver(&argc, &argv, fuzzOneInput))
        }
    }
#else
    /// Without `-DFUZZING` (a plain build): replays inputs, so the committed corpus
    /// and any crash's input run without the fuzzer:
    /// `fuzz-parsers TARGET FILE_OR_FOLDER…`.
    @main
    struct FuzzReplay {
        static func main() throws {
            let arguments = CommandLine.arguments.dropFirst()
            guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
                print("usage: fuzz-parsers \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE_OR_FOLDER...")
                exit(2)
            }
            var count = 0
            for path in arguments.dropFirst() {
                var isFolder: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { continue }
                let files =
                    isFolder.boolValue
                    ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { "\(path)/\($0)" } : [path]
                for file in files {
                    let data = try Data(contentsOf: URL(fileURLWithPath: file))
                    data.withUnsafeBytes { target.run($0) }
                    count += 1
                }
            }
            print("\(name): \(count) inputs replayed, no crash")
        }
    }
#endif
