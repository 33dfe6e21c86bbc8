import Testing

@testable import SidecarConfig

@Suite("Metrics configuration")
struct MetricsConfigurationTests {
    @Test func theBucketFactorPicksTheCoarsestSchemaWithinIt() {
        var configuration = MetricsConfiguration()
        for (factor, schema) in [(1.1, 3), (2.0, 0), (1.5, 1), (4.0, -1), (65536.0, -4), (1.0028, 8)] {
            configuration.nativeBucketFactor = factor
            #expect(configuration.nativeSchema == schema, "factor \(factor)")
        }
    }
}
