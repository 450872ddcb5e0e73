import Foundation
import TrialDomain
import TrialStandards
import TrialStore

/// Standard exports written as the store is read, a page of participants at a time.
public enum Exports {
    /// The study subject id every export uses: study, site and screening number, unique across sites.
    public static func subjectID(study: StudyDefinition, participant: ExportParticipant) -> String {
        "\(study.code)-\(participant.siteCode)-\(participant.screeningNumber)"
    }

    /// An HL7 FHIR R4 collection Bundle of the scope's participants; `blinded` leaves out arms and what was given.
    /// Returns the resources written, by type.
    public static func fhir(
        store: Store, study: StudyDefinition, scope: AccessScope, blinded: Bool, base: String, sink: @escaping FHIRBundleWriter.Sink
    ) async throws -> [String: Int] {
        var writer = FHIRBundleWriter(study: study, options: FHIRExportOptions(base: base, blinded: blinded), sink: sink)
        try writer.begin()
        let planned = study.arms.flatMap { arm in (arm.doses ?? []).map { (arm.code, $0) } }
        try await FluentExportRepository(store: store).pages(study: study, scope: scope) { page in
            var subjects: [UUID: (id: String, arm: String?)] = [:]
            for p in page.participants {
                let id = subjectID(study: study, participant: p)
                subjects[p.id] = (id, p.arm)
                let sex: FHIRSubject.Sex? = p.sex.map { code in
                    guard let female = study.participant?.female else { return .unknown }
                    return code == female ? .female : .male
                }
                try writer.add(FHIRSubject(
                    subject: id, status: p.status, sex: sex, birthYear: p.birthDate.flatMap(FHIRSubject.year(ofBirthDate:)),
                    assignedArm: blinded ? nil : p.arm, start: p.allocatedAt ?? p.createdAt))
            }
            for dose in page.doses {
                guard let subject = subjects[dose.participantID] else { continue }
                let plan = planned.first { $0.0 == subject.arm && $0.1.code == dose.dose }?.1 ?? planned.first { $0.1.code == dose.dose }?.1
                guard let plan else { continue }
                try writer.add(FHIRDose(
                    id: dose.id.uuidString, subject: subject.id, dose: dose.dose, product: plan.product, given: dose.given,
                    start: dose.startedAt ?? dose.recordedAt, end: dose.endedAt, amount: dose.amount ?? plan.amount, unit: dose.unit ?? plan.unit,
                    volume: plan.volume, volumeUnit: plan.volumeUnit, route: plan.route, skipReason: dose.skipReason))
            }
            for lab in page.labs {
                guard let participant = page.labParticipants[lab.id], let subject = subjects[participant] else { continue }
                try writer.add(FHIRLab(
                    id: lab.id.uuidString, subject: subject.id, test: lab.test, value: lab.value, unit: lab.unit, collectedAt: lab.collectedAt,
                    low: lab.lln, high: lab.uln))
            }
            for event in page.adverseEvents {
                guard let subject = subjects[event.participantID] else { continue }
                try writer.add(FHIRAdverseEvent(
                    id: event.id.uuidString, subject: subject.id, term: event.term, meddra: event.meddra, ctcaeVersion: event.version, grade: event.grade,
                    onsetAt: event.onsetAt, awareAt: event.clock?.awareAt, serious: event.serious, seriousness: event.seriousness,
                    attribution: event.attribution, outcome: event.outcome))
            }
        }
        try writer.finish()
        return writer.counts
    }

    /// Writes through a temporary file beside `url` and renames it into place: a failed export leaves no partial file.
    public static func atomically(to url: URL, _ write: (FileHandle) async throws -> Void) async throws {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw StoreError.invalid(field: "output", rule: "cannot write in \(directory.path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            do {
                try await write(handle)
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            if FileManager.default.fileExists(atPath: url.path) { _ = try FileManager.default.replaceItemAt(url, withItemAt: temporary) } else {
                try FileManager.default.moveItem(at: temporary, to: url)
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}
