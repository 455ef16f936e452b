// swift-tools-version:6.1
import PackageDescription

/// Modules whose async functions run on the caller's executor (SE-0461): a call
/// then costs no executor switch. The NIO clients (Redis, Memcached), and SQLite,
/// whose tasks may run on a connection's own thread. Swift 6.2 and later.
let callerExecutorSettings: [SwiftSetting] = {
    #if compiler(>=6.2)
        return [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
    #else
        return []
    #endif
}()

let package = Package(
    name: "ClusterSQL",
    platforms: [.macOS(.v15)],
    products: [
        // SQL: the core (Database, SQLValue, SQLError) and one product per backend.
        .library(name: "SQLCore", targets: ["SQLCore"]),
        .library(name: "SQLiteBackend", targets: ["SQLiteBackend"]),
        .library(name: "PostgresBackend", targets: ["PostgresBackend"]),
        .library(name: "MariaDBBackend", targets: ["MariaDBBackend"]),
        // Clusters: the cluster driver, and config.toml read into it.
        .library(name: "ClusterSQL", targets: ["ClusterSQL"]),
        .library(name: "ClusterConfig", targets: ["ClusterConfig"]),
        // Redis (RESP: the values its commands return) and memcached.
        .library(name: "Redis", targets: ["Redis"]),
        .library(name: "RESP", targets: ["RESP"]),
        .library(name: "Memcached", targets: ["Memcached"]),
        // The settings every client shares: pools, breakers, observers, clocks; TLS for Redis and memcached.
        .library(name: "ConnectionKit", targets: ["ConnectionKit"]),
        .library(name: "NIOClientSupport", targets: ["NIOClientSupport"]),
        // Testing: faults injected into any SQL driver.
        .library(name: "FaultInjection", targets: ["FaultInjection"]),
        .executable(name: "clustersql", targets: ["clustersql"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        // `swift package generate-documentation` (make docs): the DocC catalogs in Sources/*/Documentation.docc.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin.git", from: "1.5.0"),
    ],
    targets: [
        // C client libraries, found through pkg-config; scripts/setup.sh installs them.
        .systemLibrary(
            name: "CSQLite3", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        .systemLibrary(
            name: "CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]),
        .systemLibrary(
            name: "CMariaDB", pkgConfig: "libmariadb",
            providers: [.apt(["libmariadb-dev"]), .brew(["mariadb-connector-c"])]),

        .target(
            name: "ConnectionKit",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]),
        // epoll and eventfd for SocketReactor (Glibc's module lacks them).
        .systemLibrary(name: "CEpoll"),
        .target(name: "SocketReactor", dependencies: ["ConnectionKit", "CEpoll"], swiftSettings: callerExecutorSettings),
        .target(
            name: "SQLCore",
            dependencies: [
                "ConnectionKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: callerExecutorSettings),
        .target(
            name: "SQLiteBackend",
            dependencies: ["SQLCore", "ConnectionKit", "CSQLite3", .product(name: "Logging", package: "swift-log")],
            swiftSettings: callerExecutorSettings),
        .target(
            name: "PostgresBackend",
            dependencies: [
                "SQLCore", "ConnectionKit", "SocketReactor", "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: callerExecutorSettings),
        .target(
            name: "MariaDBBackend",
            dependencies: [
                "SQLCore", "ConnectionKit", "SocketReactor", "CMariaDB",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: callerExecutorSettings),
        .target(
            name: "ClusterSQL",
            dependencies: [
                "SQLCore", "ConnectionKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: callerExecutorSettings),
        .target(name: "FaultInjection", dependencies: ["SQLCore", "ConnectionKit"], swiftSettings: callerExecutorSettings),
        .target(name: "RESP", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(
            name: "NIOClientSupport",
            dependencies: [
                "ConnectionKit", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: callerExecutorSettings),
        .target(
            name: "Redis",
            dependencies: [
                "RESP", "ConnectionKit", "NIOClientSupport", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: callerExecutorSettings),
        .target(
            name: "Memcached",
            dependencies: [
                "ConnectionKit", "NIOClientSupport", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: callerExecutorSettings),
        .target(
            name: "ClusterConfig",
            dependencies: [
                "SQLCore", "ClusterSQL", "Redis", "Memcached", "NIOClientSupport", .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Test support that starts nothing (bounded waits, time scaling, a log capture), and the
        // real servers the integration tests start.
        .target(
            name: "TestSupport",
            dependencies: [
                "ConnectionKit", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/TestSupport"),
        .target(
            name: "TestServers",
            dependencies: [
                "ConnectionKit", "TestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ], path: "Tests/TestServers"),
        .executableTarget(name: "connectionkit-bench", dependencies: ["ConnectionKit"], path: "Benchmarks/connectionkit-bench"),
        .executableTarget(
            name: "tracing-bench",
            dependencies: [
                "BenchSupport", "ConnectionKit", "SQLCore", "PostgresBackend", "Redis", "TestServers",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ], path: "Benchmarks/tracing-bench"),
        .target(name: "BenchSupport", dependencies: ["SQLCore", "ConnectionKit"], path: "Benchmarks/BenchSupport"),
        .executableTarget(
            name: "sql-bench",
            dependencies: [
                "BenchSupport", "ConnectionKit", "SQLCore", "SQLiteBackend", "PostgresBackend", "MariaDBBackend", "TestServers",
            ],
            path: "Benchmarks/sql-bench", exclude: ["peers"]),
        .executableTarget(
            name: "redis-bench",
            dependencies: [
                "BenchSupport", "ConnectionKit", "NIOClientSupport", "Redis", "TestServers",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ], path: "Benchmarks/redis-bench"),
        .executableTarget(
            name: "memcached-bench",
            dependencies: [
                "BenchSupport", "ConnectionKit", "Memcached", "TestServers", .product(name: "NIOCore", package: "swift-nio"),
            ], path: "Benchmarks/memcached-bench"),
        .executableTarget(
            name: "sentinel-bench",
            dependencies: [
                "BenchSupport", "ConnectionKit", "Redis", "RESP", "TestServers", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ], path: "Benchmarks/sentinel-bench"),
        .executableTarget(
            name: "cluster-bench",
            dependencies: [
                "BenchSupport", "ClusterSQL", "ConnectionKit", "SQLCore", "MariaDBBackend", "TestServers",
                .product(name: "Logging", package: "swift-log"),
            ], path: "Benchmarks/cluster-bench"),
        // libFuzzer targets for every parser of outside input (scripts/fuzz.sh; a replay tool in a plain build).
        .executableTarget(
            name: "fuzz-parsers",
            dependencies: [
                "ClusterConfig", "ClusterSQL", "MariaDBBackend", "Memcached", "PostgresBackend", "RESP", "Redis", "SQLCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ], path: "Fuzz/fuzz-parsers"),
        .executableTarget(
            name: "clustersql",
            dependencies: [
                "SQLCore", "SQLiteBackend", "PostgresBackend", "MariaDBBackend", "ClusterSQL", "FaultInjection", "ClusterConfig",
                "ConnectionKit", "Redis", "RESP", "Memcached",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        .target(name: "SQLTestSupport", dependencies: ["SQLCore"], path: "Tests/SQLTestSupport"),
        // Unit tests: they start no server and no other process (make unit).
        .testTarget(name: "CBindingsTests", dependencies: ["CSQLite3", "CLibPQ", "CMariaDB"]),
        .testTarget(
            name: "ConnectionKitTests",
            dependencies: [
                "ConnectionKit", "TestSupport", .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]),
        .testTarget(name: "SQLCoreTests", dependencies: ["SQLCore", "ConnectionKit"]),
        .testTarget(
            name: "SQLiteBackendTests", dependencies: ["SQLiteBackend", "SQLCore", "SQLTestSupport", "ConnectionKit", "TestSupport"]),
        .testTarget(name: "MariaDBBackendTests", dependencies: ["MariaDBBackend", "SQLCore"]),
        .testTarget(
            name: "ClusterSQLTests",
            dependencies: [
                "ClusterSQL", "FaultInjection", "SQLCore", "SQLiteBackend", "PostgresBackend", "MariaDBBackend", "ConnectionKit",
                "SQLTestSupport", "TestSupport", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .testTarget(name: "ClusterConfigTests", dependencies: ["ClusterConfig", "ClusterSQL", "Redis", "Memcached", "NIOClientSupport"]),
        .testTarget(
            name: "RESPTests",
            dependencies: [
                "RESP", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]),
        .testTarget(name: "RedisTests", dependencies: ["Redis", "RESP", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(
            name: "MemcachedTests",
            dependencies: [
                "Memcached", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]),
        .testTarget(name: "NIOClientSupportTests", dependencies: ["NIOClientSupport", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "SocketReactorTests", dependencies: ["SocketReactor", "ConnectionKit", "TestSupport"]),
        .testTarget(
            name: "HardeningTests",
            dependencies: [
                "SQLCore", "PostgresBackend", "MariaDBBackend", "Redis", "Memcached", "ClusterConfig",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]),
        // Integration tests: they start real servers on 127.0.0.1 (TestServers), or the tool.
        .testTarget(
            name: "SQLConformanceIntegrationTests",
            dependencies: ["SQLCore", "SQLiteBackend", "PostgresBackend", "MariaDBBackend", "SQLTestSupport", "TestServers", "TestSupport"]),
        .testTarget(
            name: "PostgresBackendIntegrationTests",
            dependencies: ["PostgresBackend", "SQLCore", "SQLTestSupport", "TestServers", "TestSupport"]),
        .testTarget(
            name: "MariaDBBackendIntegrationTests",
            dependencies: ["MariaDBBackend", "SQLCore", "SQLTestSupport", "TestServers", "TestSupport"]),
        .testTarget(
            name: "ClusterSQLIntegrationTests",
            dependencies: [
                "ClusterSQL", "ClusterConfig", "FaultInjection", "SQLCore", "PostgresBackend", "MariaDBBackend", "ConnectionKit",
                "SQLTestSupport", "TestServers", "TestSupport", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "RedisIntegrationTests",
            dependencies: [
                "Redis", "RESP", "ConnectionKit", "NIOClientSupport", "TestServers", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]),
        .testTarget(
            name: "MemcachedIntegrationTests",
            dependencies: [
                "Memcached", "ConnectionKit", "NIOClientSupport", "TestServers", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        .testTarget(
            name: "NIOClientSupportIntegrationTests",
            dependencies: [
                "NIOClientSupport", "TestServers", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]),
        .testTarget(
            name: "HardeningIntegrationTests",
            dependencies: ["SQLCore", "PostgresBackend", "MariaDBBackend", "Redis", "Memcached", "NIOClientSupport", "TestServers"]),
        .testTarget(
            name: "TracingIntegrationTests",
            dependencies: [
                "ClusterSQL", "ConnectionKit", "FaultInjection", "SQLCore", "SQLiteBackend", "PostgresBackend", "Redis", "Memcached",
                "TestServers", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]),
        .testTarget(name: "ClusterSQLToolIntegrationTests", dependencies: ["clustersql", "TestServers", "TestSupport"]),
        .testTarget(name: "TestServersIntegrationTests", dependencies: ["TestServers"]),
    ],
    swiftLanguageModes: [.v6]
)

// Every Swift target: a member is visible only through a module the file imports
// (SE-0444), and existential types are spelled `any` (SE-0335).
for target in package.targets where [.regular, .executable, .test].contains(target.type) {
    target.swiftSettings =
        (target.swiftSettings ?? []) + [.enableUpcomingFeature("MemberImportVisibility"), .enableUpcomingFeature("ExistentialAny")]
}
