public import Foundation
public import ObjectStorage
public import SidecarBreaker
public import SidecarCanary
import SidecarConfig

/// What a backend's requests showed of the network: the name's answer, and per address the last request's phases,
/// its TLS session and, with `addresses: all`, whether its cycle works. Kept by the ``StatusBoard``, its one writer.
public struct NetworkStatus: Sendable, Equatable {
    /// One address of the backend's name.
    public struct AddressStatus: Sendable, Equatable {
        public var address: String
        /// `ipv4` or `ipv6`.
        public var family: String
        /// With `addresses: all`: whether its last cycle succeeded; `nil` with `addresses: first`.
        public var up: Bool?
        /// When `up` last changed.
        public var since: Date?
        public var lastSuccess: Date?
        /// Its last failure: operation, reason, the phase it broke in and the message.
        public var lastError: StepResult?
        /// The last request's phases, in order.
        public var phases: [PhaseDuration] = []
        /// When that request ended.
        public var lastRequest: Date?
        /// The session of the last new TLS connection to it.
        public var tls: TLSSessionInfo?

        init(address: String) {
            self.address = address
            self.family = IPFamily(address: address).rawValue
        }
    }

    /// An address that went down or came back: what `address.failing` and `address.recovered` tell.
    public struct AddressChange: Sendable, Equatable {
        public var address: String
        public var up: Bool
        public var failure: FailureSummary?
    }

    /// The last answer for the name.
    public var resolution: NameResolution?
    public var resolvedAt: Date?
    /// The last lookup's failure, until a lookup succeeds.
    public var dnsFailure: DNSFailure?
    /// The addresses seen, in the answer's order; at most ``maxAddresses``.
    public var addresses: [AddressStatus] = []

    /// Addresses kept; the oldest go first beyond it (an answer that changes every time stays bounded).
    static let maxAddresses = 64

    public init() {}

    /// Some addresses fail while another works.
    public var isDegraded: Bool {
        self.addresses.contains { $0.up == false } && self.addresses.contains { $0.up == true }
    }

    /// Its addresses presented different leaf certificates.
    public var certificatesDiffer: Bool { Set(self.addresses.compactMap(\.tls?.fingerprint)).count > 1 }

    /// A request ended. Returns the name's new answer when it differs from the last one (to be logged).
    mutating func record(_ trace: RequestTrace, at date: Date) -> (old: [String], new: [String])? {
        var change: (old: [String], new: [String])?
        if let resolution = trace.resolution {
            change = self.record(resolution, at: date)
        }
        if let failure = trace.dnsFailure { self.dnsFailure = failure }
        guard let address = trace.address else { return change }
        self.update(address) { status in
            status.phases = trace.phases
            status.lastRequest = date
            if let tls = trace.tls { status.tls = tls }
        }
        return change
    }

    /// What a cycle changed: the addresses whose verdict changed, and the name's answer when it changed.
    public struct Update: Sendable {
        public var changes: [AddressChange] = []
        public var answer: (old: [String], new: [String])?
    }

    /// A cycle with `addresses: all` ended: each address's verdict. A first verdict counts as a change only when it
    /// is a failure.
    mutating func record(_ set: AddressSet, at date: Date) -> Update {
        var update = Update()
        if let failure = set.dnsFailure {
            self.dnsFailure = failure
            return update
        }
        guard let resolution = set.resolution else { return update }
        update.answer = self.record(resolution, at: date)
        var changes: [AddressChange] = []
        for result in set.results {
            let up = result.status == .success
            self.update(result.address) { status in
                if status.up != up {
                    if status.up != nil || !up {
                        changes.append(AddressChange(address: result.address, up: up, failure: result.failure))
                    }
                    status.since = date
                }
                status.up = up
                if up { status.lastSuccess = date }
                if let failure = result.failure {
                    status.lastError = StepResult(
                        operation: CanaryConfiguration.Operation(rawValue: failure.operation) ?? .put, result: .error,
                        reason: failure.reason, message: failure.message, phase: result.phase)
                }
            }
        }
        update.changes = changes
        return update
    }

    private mutating func record(_ resolution: NameResolution, at date: Date) -> (old: [String], new: [String])? {
        let old = self.resolution?.addresses ?? []
        self.resolution = resolution
        self.resolvedAt = date
        self.dnsFailure = nil
        // Addresses the name no longer has go; the answer's order is kept.
        let kept = self.addresses.filter { resolution.addresses.contains($0.address) }
        self.addresses = resolution.addresses.prefix(Self.maxAddresses).map { address in
            kept.first { $0.address == address } ?? AddressStatus(address: address)
        }
        return Set(old) == Set(resolution.addresses) || old.isEmpty ? nil : (old, resolution.addresses)
    }

    private mutating func update(_ address: String, _ change: (inout AddressStatus) -> Void) {
        if let index = self.addresses.firstIndex(where: { $0.address == address }) {
            change(&self.addresses[index])
        } else {
            var status = AddressStatus(address: address)
            change(&status)
            self.addresses.append(status)
            if self.addresses.count > Self.maxAddresses { self.addresses.removeFirst() }
        }
    }
}
