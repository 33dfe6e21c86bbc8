/// Where this instance pushes its own alerts (`alertmanagers:`), the way Prometheus sends alerts: every URL of an
/// Alertmanager cluster gets every alert. Credentials and URLs are secrets: never logged or exported.
public struct AlertmanagerConfiguration: Sendable, Equatable {
    /// Base URLs (`http://alertmanager-0:9093`); alerts are POSTed to `<url>/api/v2/alerts`.
    public var urls: [String]
    /// How often firing alerts are sent again; their `endsAt` is four of these ahead, so the alerts of an instance
    /// that dies resolve by themselves.
    public var resendInterval: Duration = .seconds(60)
    /// Time limit of one request.
    public var timeout: Duration = .seconds(10)
    /// Retries of one push before it is dropped (the next resend carries the alert again).
    public var maxRetries: Int = 3
    /// Pushes waiting per Alertmanager at most; when full, the oldest is dropped.
    public var queueSize: Int = 100
    /// `Authorization: Bearer` token, if the Alertmanagers sit behind an authenticating proxy.
    public var bearerToken: String?
    /// Basic-auth user name and password, the other way to authenticate.
    public var basicAuth: BasicAuth?
    /// PEM file of the CA that signed the Alertmanagers' certificates (https URLs); system CAs otherwise.
    public var caBundle: String?

    /// A user name and its password.
    public struct BasicAuth: Sendable, Equatable {
        public var username: String
        public var password: String
    }

    init(urls: [String]) {
        self.urls = urls
    }

    /// How long a pushed firing alert stays valid without a resend.
    public var alertValidity: Duration { self.resendInterval * 4 }
}
