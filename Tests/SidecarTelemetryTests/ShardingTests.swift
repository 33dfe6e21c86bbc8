import Foundation
import ObjectStorage
import PrometheusExposition
import Testing

@testable import SidecarConfig
@testable import SidecarTelemetry

/// `sharding:` for a dedicated fleet: the documented hash, the configuration's checks, and which backends a replica
/// keeps.
@Suite("Sharding")
struct ShardingTests {
    static let backends = """
        backends:
          - {name: ceph-a, endpoint: "http://127.0.0.1:7480", bucket: b,
              credentials: {access_key_id: A, secret_access_key: S}}
          - {name: aws, endpoint: "http://127.0.0.1:7480", bucket: b,
              credentials: {access_key_id: A, secret_access_key: S}}
        """

    static func load(_ sharding: String, hostName: String = "host-1") throws(ConfigurationError) -> CanaryConfiguration
    {
        try ConfigurationLoader(environment: [:], hostName: hostName).load(
            data: Data((sharding + "\n" + Self.backends).utf8))
    }

    /// 64-bit FNV-1a of the name, modulo the shard count; the values were computed independently (Python).
    @Test(arguments: [
        ("ceph-a", UInt64(13_642_112_511_783_449_899), 1), ("aws", 16_666_874_549_339_964_726, 0),
        ("b00", 18_417_743_462_703_084_717, 0), ("b01", 18_417_742_363_191_456_506, 2),
        ("backend-with-a-long-name", 15_435_667_029_323_882_875, 1),
    ])
    func theHashIsStable(name: String, hash: UInt64, shardOfThree: Int) {
        #expect(CanaryConfiguration.Sharding.shard(of: name, shards: 3) == shardOfThree)
        #expect(CanaryConfiguration.Sharding.shard(of: name, shards: 7) == Int(hash % 7))
    }

    @Test func everyBackendBelongsToExactlyOneReplica() {
        let names = (0..<30).map { String(format: "b%02d", $0) }
        let shards = (0..<3).map { shard in
            names.filter { CanaryConfiguration.Sharding(shards: 3, shard: shard).owns($0) }
        }
        #expect(shards.map(\.count) == [12, 10, 8], "as the Python reference computes")
        #expect(Set(shards.flatMap { $0 }) == Set(names) && shards.flatMap { $0 }.count == 30)
    }

    @Test func aReplicaRunsOnlyItsShard() throws {
        let configuration = try Self.load("sharding: {shards: 3, shard: 1}")
        #expect(configuration.sharding == .init(shards: 3, shard: 1))
        #expect(configuration.ownedBackends.map(\.name) == ["ceph-a"])
        #expect(configuration.backends.count == 2, "every replica still validates the whole file")
        #expect(try Self.load("instance: x").ownedBackends.count == 2, "no sharding: every backend")
    }

    @Test(arguments: ["s3-canary-2", "s3-canary-2.s3-canary.monitoring.svc.cluster.local"])
    func theShardCanComeFromAStatefulSetOrdinal(hostName: String) throws {
        let configuration = try Self.load("sharding: {shards: 3, shard_from_hostname: true}", hostName: hostName)
        #expect(configuration.sharding == .init(shards: 3, shard: 2))
    }

    @Test(arguments: [
        ("sharding: {shards: 3, shard: 3}", "host-1", "sharding.shard"),
        ("sharding: {shards: 0, shard: 0}", "host-1", "sharding.shards"),
        ("sharding: {shard: 0}", "host-1", "sharding.shards"),
        ("sharding: {shards: 2}", "host-1", "sharding.shard"),
        ("sharding: {shards: 2, shard: -1}", "host-1", "sharding.shard"),
        ("sharding: {shards: 2, shard: 0, shard_from_hostname: true}", "canary-0", "sharding"),
        ("sharding: {shards: 2, shard_from_hostname: true}", "canary", "sharding.shard_from_hostname"),
        ("sharding: {shards: 2, shard_from_hostname: true}", "canary-5", "sharding.shard_from_hostname"),
        ("sharding: {shards: 2, replicas: 3}", "host-1", "sharding.replicas"),
    ])
    func badShardingNamesItsField(sharding: String, hostName: String, field: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try Self.load(sharding, hostName: hostName) }
        #expect(error.problems.map(\.field).contains(field), "\(error.problems)")
    }

    @Test func theShardIsPublished() throws {
        let metrics = try CanaryMetrics(version: "t")
        metrics.setShard((0, 1))
        metrics.setShard((1, 3))
        #expect(metrics.shardInfo.value(["1", "3"]) == 1)
        #expect(metrics.shardInfo.value(["0", "1"]) == nil, "a changed shard replaces the old series")
    }
}
