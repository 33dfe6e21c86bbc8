// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "s3-canary",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ObjectStorage", targets: ["ObjectStorage"]),
        .executable(name: "s3-canary", targets: ["s3-canary"]),
    ],
    dependencies: [
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
    ],
    targets: [
        // S3 client and object-backend abstraction; no metrics or server imports, usable on its own.
        .target(
            name: "ObjectStorage",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The service: breakers, canaries, telemetry, notifications, HTTP endpoint, configuration, wiring.
        .target(
            name: "CanarySidecar",
            dependencies: [
                "ObjectStorage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "s3-canary",
            dependencies: [
                "CanarySidecar",
                "ObjectStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Micro benchmarks (`swift run -c release s3-canary-bench`); scripts/bench.sh runs them into bench/REPORT.md.
        .executableTarget(
            name: "s3-canary-bench",
            dependencies: [
                "CanarySidecar",
                "ObjectStorage",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Benchmarks/Micro"
        ),
        .testTarget(
            name: "ObjectStorageTests",
            dependencies: ["ObjectStorage"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "CanarySidecarTests",
            dependencies: ["CanarySidecar", "ObjectStorage"]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["CanarySidecar", "ObjectStorage"]
        ),
    ]
)
