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
                subjects[p.id] = (id, p.currentArm)
                let sex: FHIRSubject.Sex? = p.sex.map { code in
                    guard let female = study.participant?.female else { return .unknown }
                    return code == female ? .female : .male
                }
                try writer.add(FHIRSubject(
                    subject: id, status: p.status, sex: sex, birthYear: p.birthDate.flatMap(FHIRSubject.year(ofBirthDate:)),
                    assignedArm: blinded ? nil : p.currentArm, start: p.allocatedAt ?? p.createdAt))
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
            let own = page.byParticipant()
            for p in page.participants {
                func audit(_ entries: [AuditEntry]?) -> [ODMAuditEvent] { (entries ?? []).map { ODMAuditEvent($0, site: p.siteCode) } }
                let forms = (own.forms[p.id] ?? []).map { record in
                    var byField: [String: [ODMAuditEvent]] = [:]
                    for entry in page.audit[record.id.uuidString] ?? [] {
                        for change in entry.changes where change.field.hasPrefix("\(record.form).") {
                            byField[String(change.field.dropFirst(record.form.count + 1)), default: []].append(ODMAuditEvent(entry, site: p.siteCode))
                        }
                    }
                    return ODMFormData(visit: record.visit, form: record.form, values: record.values, audit: byField)
                }
                let labs = (own.labs[p.id] ?? []).map { lab in
                    ODMLabResult(
                        visit: lab.visit, test: lab.test, collectedAt: lab.collectedAt, value: lab.value, unit: lab.unit, enteredValue: lab.enteredValue,
                        enteredUnit: lab.enteredUnit, grade: study.safety.ctcaeVersion.hasPrefix("5") ? lab.gradeV5 : lab.gradeV4,
                        audit: audit(page.audit[lab.id.uuidString]))
                }
                let signatures = (own.signatures[p.id] ?? []).filter(\.valid).map { s in
                    ODMSignature(
                        meaning: s.meaning.rawValue, user: s.signer, signedAt: s.signedAt,
                        covers: s.form.map { .form(visit: s.visit ?? "", form: $0) } ?? .casebook, site: p.siteCode)
                }
                try writer.write(ODMSubject(
                    key: subjectID(study: study, participant: p), site: p.siteCode, forms: forms, labs: labs, signatures: signatures,
                    allocation: blinded ? nil : p.currentArm.map { ODMAllocation(arm: $0, allocatedAt: p.stages.last?.at ?? p.allocatedAt) }))
                subjects += 1
            }
        }
        try writer.finish()
        return subjects
    }

    /// SDTM datasets (one SAS transport file each) and their Define-XML 2.1 into `directory`, in one pass over the store:
    /// a writer per dataset, each participant's rows appended to every one as the participant is read. Written into a
    /// folder beside `directory` and moved in only when all of it is; returns the records of each dataset.
    public static func sdtm(store: Store, study: StudyDefinition, scope: AccessScope, blinded: Bool, directory: URL) async throws -> [String: Int] {
        let export = try SDTMExport(study: study, blinded: blinded)
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        let work = directory.appendingPathComponent(".sdtm-\(UUID().uuidString).partial")
        try fm.createDirectory(at: work, withIntermediateDirectories: false)
        defer { try? fm.removeItem(at: work) }
        var writers: [(domain: SDTMDomain, writer: XPORTWriter<XPORTFileSink>, handle: FileHandle)] = []
        defer { for w in writers { try? w.handle.close() } }
        let header = XPORTHeader()
        for domain in export.domains {
            let url = work.appendingPathComponent(domain.fileName)
            guard fm.createFile(atPath: url.path, contents: nil) else { throw StoreError.invalid(field: "output", rule: "cannot write in \(directory.path)") }
            let handle = try FileHandle(forWritingTo: url)
            let writer = try XPORTWriter(sink: XPORTFileSink(handle), dataset: domain.dataset, variables: domain.xportVariables, header: header)
            writers.append((domain, writer, handle))
            if SDTMExport.designDomains.contains(domain.name) { for row in try export.designRows(domain.name) { try writer.append(row) } }
        }
        var counts: [String: Int] = [:]
        let forms = Dictionary(uniqueKeysWithValues: study.forms.map { ($0.code, $0) })
        try await FluentExportRepository(store: store).pages(study: study, scope: scope, records: true) { page in
            let own = page.byParticipant()
            for p in page.participants {
                let id = p.id.uuidString
                let doses = (own.doses[p.id] ?? [])
                let given = doses.filter(\.given).compactMap(\.startedAt).sorted()
                let decision = page.decisions[p.id]
                let disposition = Self.disposition(study: study, records: own.forms[p.id] ?? [])
                let subject = SDTMSubject(
                    participantID: id, site: p.siteCode, screeningNumber: p.screeningNumber, status: p.status, sex: p.sex, birthDate: p.birthDate,
                    consentedAt: page.consents[p.id], eligibility: decision.map { SDTMEligibility(decidedAt: $0.at, eligible: $0.eligible, failedCriteria: $0.failed) },
                    allocations: zip([p.arm], [p.allocatedAt]).compactMap { arm, at in arm.flatMap { a in at.map { SDTMAllocation(arm: a, at: $0) } } }
                        + p.stages.map { SDTMAllocation(stage: $0.stage, arm: $0.arm, at: $0.at) },
                    firstDoseAt: given.first, lastDoseAt: given.last, disposition: disposition)
                let labs = (own.labs[p.id] ?? [])
                let records = (own.forms[p.id] ?? [])
                // A visit happened on the first date its forms record, or its first sample.
                var starts: [String: Date] = [:]
                for record in records {
                    guard let field = forms[record.form]?.fields.first(where: { $0.type == .date || $0.type == .datetime }), let text = record.values[field.code],
                        let date = DateParsing.instant(text) ?? DateParsing.day(text)
                    else { continue }
                    starts[record.visit] = min(starts[record.visit] ?? date, date)
                }
                for lab in labs { starts[lab.visit] = min(starts[lab.visit] ?? lab.collectedAt, lab.collectedAt) }
                let data = SDTMSubjectData(
                    subject: subject,
                    doses: doses.map {
                        SDTMDose(participantID: id, dose: $0.dose, given: $0.given, startedAt: $0.startedAt, endedAt: $0.endedAt, amount: $0.amount, unit: $0.unit, skipReason: $0.skipReason)
                    },
                    labs: labs.map {
                        SDTMLab(
                            participantID: id, visit: $0.visit, test: $0.test, collectedAt: $0.collectedAt, value: $0.enteredValue, unit: $0.enteredUnit,
                            standardValue: $0.value, standardUnit: $0.unit, lowerLimit: $0.lln, upperLimit: $0.uln,
                            grade: study.safety.ctcaeVersion.hasPrefix("5") ? $0.gradeV5 : $0.gradeV4)
                    },
                    adverseEvents: (own.adverseEvents[p.id] ?? []).map {
                        SDTMAdverseEvent(
                            participantID: id, term: $0.term, meddra: $0.meddra, ctcaeVersion: $0.version, grade: $0.grade, onset: $0.onsetAt, resolved: $0.resolvedAt,
                            serious: $0.serious, seriousness: $0.seriousness, attribution: $0.attribution, action: SDTMAction(parsing: $0.actionTaken) ?? .unknown,
                            outcome: SDTMOutcome(parsing: $0.outcome) ?? .unknown)
                    },
                    visits: starts.sorted { $0.key < $1.key }.map { SDTMVisitRecord(participantID: id, visit: $0.key, start: .instant($0.value)) },
                    forms: records.map { SDTMFormRecord(participantID: id, visit: $0.visit, form: $0.form, values: $0.values) })
                for w in writers where !SDTMExport.designDomains.contains(w.domain.name) {
                    for row in try export.rows(w.domain.name, for: data) {
                        try w.writer.append(row)
                        counts[w.domain.name, default: 0] += 1
                    }
                }
            }
        }
        for w in writers {
            try w.writer.finish()
            try w.handle.synchronize()
        }
        let define = DefineXML.document(study: study, domains: export.domains, blinded: blinded)
        try Data(define.utf8).write(to: work.appendingPathComponent("define.xml"))
        for name in export.domains.map(\.fileName) + ["define.xml"] {
            let target = directory.appendingPathComponent(name)
            if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
            try fm.moveItem(at: work.appendingPathComponent(name), to: target)
        }
        for name in SDTMExport.designDomains where export.domain(name) != nil { counts[name] = try export.designRows(name).count }
        return counts
    }

    /// Writes through a temporary file beside `url` and renames it into place: a failed export leaves no partial file.
    public static func atomically(to given: URL, _ write: (FileHandle) async throws -> Void) async throws {
        let url = given.absoluteURL.standardizedFileURL
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
            // rename(2) replaces an existing file atomically (Foundation's replaceItemAt fails for an existing file on Linux).
            guard rename(temporary.path, url.path) == 0 else {
                throw StoreError.invalid(field: "output", rule: "cannot replace \(url.path): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}

extension ExportPage {
    /// The page's records by participant, grouped once rather than searched for each participant.
    struct Owned {
        var forms: [UUID: [ExportForm]]
        var labs: [UUID: [LabResult]]
        var doses: [UUID: [ExportDose]]
        var adverseEvents: [UUID: [AdverseEvent]]
        var signatures: [UUID: [Signature]]
    }

    func byParticipant() -> Owned {
        Owned(
            forms: Dictionary(grouping: forms, by: \.participantID),
            labs: Dictionary(grouping: labs.filter { labParticipants[$0.id] != nil }, by: { labParticipants[$0.id]! }),
            doses: Dictionary(grouping: doses, by: \.participantID), adverseEvents: Dictionary(grouping: adverseEvents, by: \.participantID),
            signatures: Dictionary(grouping: signatures, by: \.participantID))
    }
}

extension Exports {
    /// How the participant's follow-up ended, from the definition's end-of-study field: the choice's CDISC term (its
    /// mapping, else completed or lost by the rule's lists, else OTHER), dated by the rule's date field.
    static func disposition(study: StudyDefinition, records: [ExportForm]) -> SDTMDisposition? {
        guard let end = study.participant?.endOfStudy, let named = study.field(named: end.field),
            let choice = records.last(where: { $0.form == named.form.code && !($0.values[named.field.code] ?? "").isEmpty })?.values[named.field.code],
            let dated = end.date.flatMap(study.field(named:)),
            let text = records.last(where: { $0.form == dated.form.code && $0.values[dated.field.code] != nil })?.values[dated.field.code]
        else { return nil }
        let date: SDTMDate = text.count == 10 ? .day(text) : (DateParsing.instant(text).map { .instant($0) } ?? .day(String(text.prefix(10))))
        let fallback: SDTMDisposition.Reason = switch end.ending(of: choice) {
        case .completed: .completed
        case .lost: .lostToFollowUp
        case .discontinued: .other
        }
        let reason = end.disposition(of: choice).flatMap(SDTMDisposition.Reason.init(rawValue:)) ?? fallback
        return SDTMDisposition(reason: reason, date: date, term: end.label(of: choice, in: study).uppercased())
    }
}
