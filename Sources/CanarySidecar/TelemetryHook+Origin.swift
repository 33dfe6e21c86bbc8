import SidecarConfig
import SidecarServer
import SidecarTelemetry

extension TelemetryHook.Origin {
    /// What events of a running `configuration` say about their instance: its name and its `/status` link.
    init(_ configuration: CanaryConfiguration) {
        self.init(
            instance: configuration.instance,
            statusURL: configuration.externalBaseURL + Route.status.path,
            externalLabels: configuration.externalLabels
        )
    }
}
