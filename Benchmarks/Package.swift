// swift-tools-version:6.1
import PackageDescription

// In-process benchmarks of Casebook's domain and audit chain (ordo-one/benchmark).
// A package of its own, so the main package's build and test run never see the benchmark plugin.
// Run from this folder: swift package --disable-sandbox benchmark
let package = Package(
    name: "casebook-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "casebook", path: ".."),
        // The default RuntimeInterposer trait would need ordo-one/swift-runtime-interposer; MallocInterposer alone gives the malloc metrics.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // Opening an SQLite store outside Vapor needs these directly (same constraints as the main package).
        .package(url: "https://github.com/vapor/fluent-kit.git", from: "1.57.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.65.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "CasebookBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TrialDomain", package: "casebook"),
                .product(name: "TrialStandards", package: "casebook"),
                .product(name: "TrialStore", package: "casebook"),
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/CasebookBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ]
)
