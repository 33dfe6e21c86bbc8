public import ObjectStorage
public import SidecarCanary
public import SidecarTelemetry

/// What the HTTP endpoint serves, provided by the application's wiring: the endpoint reads through it and asks it
/// for probes and reloads, and knows nothing of how the service is put together.
public protocol EndpointModel: Sendable {
    /// Every metric family; `/metrics` renders them.
    var metrics: CanaryMetrics { get }
    /// What `/status`, `/readyz` and the status page show.
    var board: StatusBoard { get }
    /// Who may read the endpoint.
    var access: EndpointAccess { get }
    /// The configured instance name, for `/status`.
    var instance: String { get }
    /// The backends running now, with their breakers.
    var targets: [CanaryTarget] { get }
    /// Changes on every reload attempt, so a cached `/metrics` from before a reload is not served after it.
    var reloadGeneration: Int { get }
    /// Runs one cycle of `backend` now; `nil` when no such backend runs.
    func probe(backend: String) async -> (CycleResult, [String])?
    /// Reloads the configuration; answers with this request's own result.
    func reload() async -> Result<Int, ConfigurationError>
}
