public import Foundation
public import ObjectStorage
public import SidecarConfig

/// A backend's corpus as it runs: one per backend with `durability:`, the unwrapped backend's own client (its own
/// connections, so the corpus never takes the canary's) and the settings.
public struct DurabilityTarget: Sendable {
    /// The backend's configured name.
    public var name: String
    /// This instance (its progress record's name).
    public var instance: String
    public var settings: CanaryConfiguration.Durability
    /// A client of its own for the corpus: never through the breaker (a lost object is not an outage).
    public var backend: any ObjectBackend

    public init(name: String, instance: String, settings: CanaryConfiguration.Durability, backend: any ObjectBackend) {
        self.name = name
        self.instance = instance
        self.settings = settings
        self.backend = backend
    }
}

/// What a durability check found, after each sample, each part of a full pass and each step of writing the corpus.
public struct DurabilityReport: Sendable, Equatable {
    public enum Phase: String, Sendable, Codable {
        /// No manifest yet: the corpus is being written (or checked for, when the bucket cannot be read).
        case creating
        /// The corpus is complete and being checked.
        case verifying
    }

    /// Checks by how they ended, since the previous report.
    public struct Checks: Sendable, Equatable {
        public var ok = 0
        public var missing = 0
        public var corrupted = 0
        /// No verdict: the request failed (5xx, timeout); the object is checked again later.
        public var error = 0
        public init() {}
    }

    public var backend: String
    public var phase: Phase
    /// The corpus's prefix.
    public var prefix: String
    /// The manifest, once there is one.
    public var manifest: DurabilityManifest?
    /// Objects written or found while creating.
    public var written = 0
    /// Objects of the corpus (the manifest's count once there is one).
    public var objects: Int
    /// Damaged objects now (all of them; `/status` shows the first ones).
    public var damaged: [DurabilityProgress.Damage] = []
    /// Objects found missing or corrupted since the previous report (announced once each).
    public var newlyDamaged: [DurabilityProgress.Damage] = []
    /// Objects damaged before that read back intact now (after `durability reset`).
    public var restored: [Int] = []
    public var checks = Checks()
    public var lastSample: Date?
    public var lastFullPass: Date?
    /// The full pass under way: the next index.
    public var passPosition: Int?
    /// The last request that failed, in its own words (no key material beyond the object key).
    public var lastError: String?
    /// The configuration asks for another corpus than the manifest describes (the corpus is kept).
    public var mismatch: String?

    public init(backend: String, phase: Phase, prefix: String, objects: Int) {
        self.backend = backend
        self.phase = phase
        self.prefix = prefix
        self.objects = objects
    }

    /// Objects by state: damaged ones by theirs, every other one `ok`.
    public var counts: (ok: Int, missing: Int, corrupted: Int) {
        let missing = self.damaged.count { $0.state == .missing }
        let corrupted = self.damaged.count { $0.state == .corrupted }
        return (max(0, self.objects - missing - corrupted), missing, corrupted)
    }
}
