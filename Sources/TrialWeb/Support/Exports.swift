import FluentSQL
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

    /// A CDISC ODM 1.3.2 Snapshot of the scope's participants: the study's metadata, then every subject's forms and lab
    /// results, each value with the audit record that set it, and the signatures in force.
    public static func odm(store: Store, study: StudyDefinition, scope: AccessScope, blinded: Bool, sink: @escaping ODMWriter.Sink) async throws -> Int {
        let sql = store.database as! any SQLDatabase
        // AdminData comes before the clinical data: everyone an audit record or a signature may name, listed first.
        var names: Set<String> = []
        for row in try await sql.raw("SELECT DISTINCT actor FROM audit_events").all() { names.insert(try row.decode(column: "actor", as: String.self)) }
        for row in try await sql.raw("SELECT DISTINCT signer FROM signatures").all() { names.insert(try row.decode(column: "signer", as: String.self)) }
        let accounts = Dictionary(try await FluentAccountRepository(store: store).accounts().map { ($0.username, $0) }, uniquingKeysWith: { a, _ in a })
        let users = names.sorted().map { name in
            ODMUser(name: name, kind: accounts[name].map { $0.role == .investigator || $0.role == .coordinator ? .investigator : .sponsor } ?? .other)
        }
        let administration = ODMAdministration(
            users: users, sites: ODMSite.sites(of: study, effectiveDate: String(AuditEntry.timestamp(Date()).prefix(10))),
            meanings: SignatureMeaning.allCases.map { ODMSignatureMeaning(code: $0.rawValue, statement: $0.statement) })
        let now = Date()
        let writer = try ODMWriter(
            study: study, administration: administration,
            options: ODMOptions(fileOID: "Casebook.\(study.code).\(Int(now.timeIntervalSince1970))", createdAt: now.addingTimeInterval(1), asOf: now, blinded: blinded),
            sink: sink)
        try writer.start()
        var subjects = 0
        try await FluentExportRepository(store: store).pages(study: study, scope: scope, records: true) { page in
            for p in page.participants {
                func audit(_ entries: [AuditEntry]?) -> [ODMAuditEvent] { (entries ?? []).map { ODMAuditEvent($0, site: p.siteCode) } }
                let forms = page.forms.filter { $0.participantID == p.id }.map { record in
                    var byField: [String: [ODMAuditEvent]] = [:]
                    for entry in page.audit[record.id.uuidString] ?? [] {
                        for change in entry.changes where change.field.hasPrefix("\(record.form).") {
                            byField[String(change.field.dropFirst(record.form.count + 1)), default: []].append(ODMAuditEvent(entry, site: p.siteCode))
                        }
                    }
                    return ODMFormData(visit: record.visit, form: record.form, values: record.values, audit: byField)
                }
                let labs = page.labs.filter { page.labParticipants[$0.id] == p.id }.map { lab in
                    ODMLabResult(
                        visit: lab.visit, test: lab.test, collectedAt: lab.collectedAt, value: lab.value, unit: lab.unit, enteredValue: lab.enteredValue,
                        enteredUnit: lab.enteredUnit, grade: study.safety.ctcaeVersion.hasPrefix("5") ? lab.gradeV5 : lab.gradeV4,
                        audit: audit(page.audit[lab.id.uuidString]))
                }
                let signatures = page.signatures.filter { $0.participantID == p.id && $0.valid }.map { s in
                    ODMSignature(
                        meaning: s.meaning.rawValue, user: s.signer, signedAt: s.signedAt,
                        covers: s.form.map { .form(visit: s.visit ?? "", form: $0) } ?? .casebook, site: p.siteCode)
                }
                try writer.write(ODMSubject(
                    key: subjectID(study: study, participant: p), site: p.siteCode, forms: forms, labs: labs, signatures: signatures,
                    allocation: blinded ? nil : p.arm.map { ODMAllocation(arm: $0, allocatedAt: p.allocatedAt) }))
                subjects += 1
            }
        }
        try writer.finish()
        return subjects
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
