// swift-tools-version:6.1
import PackageDescription

// Strict settings keep the layers from leaking into each other.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "casebook",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "casebook", targets: ["casebook"]),
        // For the in-process benchmarks under Benchmarks/.
        .library(name: "TrialDomain", targets: ["TrialDomain"]),
        .library(name: "TrialStandards", targets: ["TrialStandards"]),
        .library(name: "TrialStore", targets: ["TrialStore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.3"),
        .package(url: "https://github.com/vapor/fluent.git", from: "4.13.0"),
        .package(url: "https://github.com/vapor/fluent-kit.git", from: "1.57.0"),
        .package(url: "https://github.com/vapor/fluent-sqlite-driver.git", from: "4.9.0"),
        .package(url: "https://github.com/vapor/fluent-postgres-driver.git", from: "2.14.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/JohnSundell/Plot.git", from: "0.14.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // Pure domain: Foundation only. `--explicit-target-dependency-import-check error` fails the build otherwise.
        .target(name: "TrialDomain", dependencies: [], swiftSettings: strict),
        .target(
            name: "TrialStandards",
            dependencies: ["TrialDomain", .product(name: "Yams", package: "Yams")],
            resources: [.copy("Studies"), .copy("Grading"), .copy("Schema")],
            swiftSettings: strict
        ),
        .target(
            name: "TrialStore",
            dependencies: [
                "TrialDomain",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "FluentSQL", package: "fluent-kit"),
                .product(name: "FluentSQLiteDriver", package: "fluent-sqlite-driver"),
                .product(name: "FluentPostgresDriver", package: "fluent-postgres-driver"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TrialWeb",
            dependencies: [
                "TrialDomain", "TrialStandards", "TrialStore",
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "FluentSQL", package: "fluent-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Plot", package: "Plot"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "casebook",
            dependencies: [
                "TrialDomain", "TrialStandards", "TrialStore", "TrialWeb",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "FluentSQL", package: "fluent-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "TrialDomain", "TrialStandards", "TrialStore", "TrialWeb",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "FluentSQL", package: "fluent-kit"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "VaporTesting", package: "vapor"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "TrialDomainTests", dependencies: ["TrialDomain"], swiftSettings: strict),
        .testTarget(
            name: "TrialStandardsTests", dependencies: ["TrialDomain", "TrialStandards", "TestSupport"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(
            name: "TrialStoreTests",
            dependencies: [
                "TrialDomain", "TrialStandards", "TrialStore", "TestSupport",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "FluentSQL", package: "fluent-kit"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TrialWebTests",
            dependencies: [
                "TrialDomain", "TrialStandards", "TrialStore", "TrialWeb", "TestSupport",
                .product(name: "Vapor", package: "vapor"),
                .product(name: "VaporTesting", package: "vapor"),
                .product(name: "FluentKit", package: "fluent-kit"),
            ],
            swiftSettings: strict
        ),
    ]
)
