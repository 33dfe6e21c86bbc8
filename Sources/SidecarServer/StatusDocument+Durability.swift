import Foundation
import SidecarCanary

extension StatusDocument {
    /// A backend's durability corpus on `/status`: what it is, its objects by state and the damaged ones (the first
    /// ``maxDamaged``), its last sample and full pass.
    struct Durability: Codable, Sendable {
        struct Damaged: Codable, Sendable {
            var key: String
            var state: String
            var since: Date
        }

        /// `creating` (no manifest yet) or `verifying`.
        var phase: String
        var prefix: String
        var objects: Int
        var objectSize: Int?
        var created: Date?
        var createdBy: String?
        /// Objects written or found so far, while creating.
        var written: Int?
        var ok: Int
        var missing: Int
        var corrupted: Int
        /// The first damaged objects, by key order.
        var damaged: [Damaged]
        /// Damaged objects beyond those listed.
        var damagedNotListed: Int
        var lastSample: Date?
        var lastFullPass: Date?
        /// The next object of the full pass under way.
        var passPosition: Int?
        var lastError: String?
        /// The configuration asks for another corpus than the one there (which is kept).
        var configurationMismatch: String?
    }

    /// Damaged objects `/status` lists per backend.
    static let maxDamaged = 100
}

extension StatusDocument.Durability {
    init(_ report: DurabilityReport) {
        let corpus = DurabilityCorpus(prefix: report.prefix, objects: report.objects, objectSize: 0)
        let counts = report.counts
        self.init(
            phase: report.phase.rawValue, prefix: report.prefix, objects: report.objects,
            objectSize: report.manifest?.objectSize, created: report.manifest?.created,
            createdBy: report.manifest?.createdBy, written: report.phase == .creating ? report.written : nil,
            ok: report.phase == .verifying ? counts.ok : 0, missing: counts.missing, corrupted: counts.corrupted,
            damaged: report.damaged.prefix(StatusDocument.maxDamaged).map {
                Damaged(key: corpus.key($0.index), state: $0.state.rawValue, since: $0.since)
            },
            damagedNotListed: max(0, report.damaged.count - StatusDocument.maxDamaged),
            lastSample: report.lastSample, lastFullPass: report.lastFullPass, passPosition: report.passPosition,
            lastError: report.lastError, configurationMismatch: report.mismatch)
    }
}
