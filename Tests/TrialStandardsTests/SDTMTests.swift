import Foundation
import Testing
import TrialDomain
@testable import TrialStandards

#if canImport(FoundationXML)
import FoundationXML
#endif

// SDTM datasets and Define-XML from the two studies' definitions. Expected values are worked by hand from SDTMIG 3.3
// and the protocols (../shared/protocol), never read back from the code under test.

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let reference = root.deletingLastPathComponent().appendingPathComponent("shared/reference")
private let referenceDefine = reference.appendingPathComponent("sdtm/sas-cst-definexml21-sdtm33/define/define_sdtm_3.3.xml")

private func first() throws -> StudyDefinition { try StudyFile.builtIn() }
private func second() throws -> StudyDefinition {
    try StudyFile.read(try String(contentsOf: root.appendingPathComponent("studies/ucmsc-aclf.yaml"), encoding: .utf8))
}

private func at(_ text: String) -> Date { DateParsing.instant(text)! }

/// A dataset's rows as name → value, for reading by variable.
private func table(_ export: SDTMExport, _ domain: String, _ data: SDTMSubjectData) throws -> [[String: XPORTValue]] {
    let names = try #require(export.domain(domain)).variables.map(\.name)
    return try export.rows(domain, for: data).map { Dictionary(uniqueKeysWithValues: zip(names, $0)) }
}

private func design(_ export: SDTMExport, _ domain: String) throws -> [[String: XPORTValue]] {
    let names = try #require(export.domain(domain)).variables.map(\.name)
    return try export.designRows(domain).map { Dictionary(uniqueKeysWithValues: zip(names, $0)) }
}

/// A participant of the first study (site SYSU3, Asia/Shanghai, UTC+8) allocated to MSC-EV on 2026-03-10 at 09:00
/// local time and infused at 10:00.
private func infused(_ study: StudyDefinition, number: String = "S-001") -> SDTMSubject {
    SDTMSubject(
        participantID: "p-\(number)", site: "SYSU3", screeningNumber: number, status: .randomized, sex: "F", birthDate: "1980-03-11",
        consentedAt: at("2026-03-01T01:00Z"), eligibility: SDTMEligibility(decidedAt: at("2026-03-09T02:00Z"), eligible: true),
        allocations: [SDTMAllocation(arm: "msc_ev", at: at("2026-03-10T01:00Z"))], firstDoseAt: at("2026-03-10T02:00Z"), lastDoseAt: at("2026-03-10T02:00Z"))
}

@Suite struct SDTMTests {
    // MARK: Identifiers and study day

    @Test func usubjidJoinsStudySiteAndScreeningNumberAndMustBeUnique() throws {
        var study = try first()
        study.sites.append(SiteDefinition(code: "SITE2", name: "A second site"))
        let export = try SDTMExport(study: study)
        let a = infused(study)
        var b = infused(study)
        b.participantID = "other"
        b.site = "SITE2"
        #expect(try table(export, "DM", SDTMSubjectData(subject: a))[0]["USUBJID"] == .text("MSC-EV-ACLF-LT-SYSU3-S-001"))
        #expect(try table(export, "DM", SDTMSubjectData(subject: b))[0]["USUBJID"] == .text("MSC-EV-ACLF-LT-SITE2-S-001"))
        // The same screening number at two sites is two subjects; twice at one site is refused when DM is written.
        var rows: [[XPORTValue]] = []
        try export.rowSource("DM") { emit in try emit(SDTMSubjectData(subject: a)); try emit(SDTMSubjectData(subject: b)) }({ rows.append($0) })
        #expect(rows.count == 2)
        var twin = a
        twin.participantID = "twin"
        #expect(throws: SDTMError.duplicateSubject("MSC-EV-ACLF-LT-SYSU3-S-001")) {
            try export.rowSource("DM") { emit in try emit(SDTMSubjectData(subject: a)); try emit(SDTMSubjectData(subject: twin)) }({ _ in })
        }
    }

    /// SDTMIG 3.3 §4.4.4, by hand: RFSTDTC is the infusion, 2026-03-10 10:00 in Guangzhou. A sample at 01:00 that
    /// day (2026-03-09 17:00 UTC) is day 1, not day 0 and not the UTC date's day; 2026-03-05 is 5 days before: -5;
    /// 2026-03-11 is day 2. The second sample is before the infusion, so it is SCREENING while being day 1; the third,
    /// 25 hours after the infusion, is past the primary endpoint's 24 hours: FOLLOW-UP.
    @Test func studyDayCountsSiteDaysFromReferenceStartWithoutDayZero() throws {
        let study = try first()
        let export = try SDTMExport(study: study)
        let subject = infused(study)
        func lab(_ time: String, visit: String?) -> SDTMLab {
            SDTMLab(participantID: subject.participantID, visit: visit, test: "ALT", collectedAt: at(time), value: 50, unit: "U/L", standardValue: 50, standardUnit: "U/L", upperLimit: 40)
        }
        let data = SDTMSubjectData(subject: subject, labs: [lab("2026-03-11T03:00Z", visit: nil), lab("2026-03-09T17:00Z", visit: "baseline"), lab("2026-03-05T00:30Z", visit: "screening")])
        let dm = try table(export, "DM", data)[0]
        #expect(dm["RFSTDTC"] == .text("2026-03-10T10:00:00"))
        // Age in completed years at RFSTDTC: born 1980-03-11, so 45 the day before the 46th birthday.
        #expect(dm["AGE"] == .number(45))
        let lb = try table(export, "LB", data)
        #expect(lb.map { $0["LBDTC"] } == [.text("2026-03-05T08:30:00"), .text("2026-03-10T01:00:00"), .text("2026-03-11T11:00:00")])
        #expect(lb.map { $0["LBDY"] } == [.number(-5), .number(1), .number(2)])
        #expect(lb.map { $0["LBSEQ"] } == [.number(1), .number(2), .number(3)])
        #expect(lb.map { $0["EPOCH"] } == [.text("SCREENING"), .text("SCREENING"), .text("FOLLOW-UP")])
        // The last ALT before the first exposure is flagged; the one after it is not.
        #expect(lb.map { $0["LBLOBXFL"] } == [.text(""), .text("Y"), .text("")])
    }

    // MARK: Labs

    /// BILI 300 µmol/L against ULN 17.1 is HIGH, albumin 30 g/L against LLN 35 LOW, sodium 140 in 135–145 NORMAL, AFP
    /// without a range blank. The second study's bilirubin entered as 5 mg/dL is 85.5 µmol/L (× 17.1) and the ULN
    /// 17.1 µmol/L reads 1 mg/dL in the original unit.
    @Test func labResultsKeepEnteredAndStandardUnitsAndTheRangeIndicator() throws {
        let study = try first()
        let export = try SDTMExport(study: study)
        let subject = infused(study)
        func lab(_ test: String, _ value: Double, _ unit: String, low: Double? = nil, high: Double? = nil, grade: Int? = nil) -> SDTMLab {
            SDTMLab(
                participantID: subject.participantID, visit: "day_7", test: test, collectedAt: at("2026-03-16T01:00Z"), value: value, unit: unit, standardValue: value,
                standardUnit: unit, lowerLimit: low, upperLimit: high, grade: grade)
        }
        let lb = try table(export, "LB", SDTMSubjectData(subject: subject, labs: [
            lab("BILI", 300, "umol/L", high: 17.1, grade: 3), lab("ALB", 30, "g/L", low: 35), lab("SODIUM", 140, "mmol/L", low: 135, high: 145), lab("AFP", 4, "ng/mL"),
        ]))
        let byTest = Dictionary(uniqueKeysWithValues: lb.map { ($0["LBTESTCD"]?.text ?? "", $0) })
        #expect(byTest["BILI"]?["LBNRIND"] == .text("HIGH"))
        #expect(byTest["BILI"]?["LBTOXGR"] == .text("3"))
        #expect(byTest["BILI"]?["LBLOINC"] == .text("14631-6"))
        #expect(byTest["ALB"]?["LBNRIND"] == .text("LOW"))
        #expect(byTest["SODIUM"]?["LBNRIND"] == .text("NORMAL"))
        #expect(byTest["AFP"]?["LBNRIND"] == .text(""))
        #expect(byTest["AFP"]?["LBSTNRHI"] == .missing(.standard))
        #expect(byTest["BILI"]?["VISITNUM"] == .number(6))
        #expect(byTest["BILI"]?["VISIT"] == .text("Day 7"))
        // Day 7 after the transplant is after the 24 hours that follow the infusion.
        #expect(byTest["BILI"]?["EPOCH"] == .text("FOLLOW-UP"))

        let other = try second()
        let blinded = try SDTMExport(study: other, blinded: true)
        let participant = SDTMSubject(
            participantID: "q", site: "PLAGH5", screeningNumber: "007", status: .randomized,
            allocations: [SDTMAllocation(arm: "placebo", at: at("2026-05-04T08:00Z"))], firstDoseAt: at("2026-05-04T09:00Z"))
        let mg = try table(blinded, "LB", SDTMSubjectData(subject: participant, labs: [
            SDTMLab(participantID: "q", visit: "screening", test: "BILI", collectedAt: at("2026-05-01T08:00Z"), value: 5, unit: "mg/dL", standardValue: 85.5,
                    standardUnit: "umol/L", upperLimit: 17.1),
        ]))[0]
        #expect(mg["LBORRES"] == .text("5"))
        #expect(mg["LBORRESU"] == .text("mg/dL"))
        #expect(mg["LBORNRHI"] == .text("1"))
        #expect(mg["LBSTRESC"] == .text("85.5"))
        #expect(mg["LBSTRESN"] == .number(85.5))
        #expect(mg["LBSTRESU"] == .text("umol/L"))
        #expect(mg["LBNRIND"] == .text("HIGH"))
        #expect(mg["LBDY"] == .number(-3))
    }

    // MARK: Epochs from the definition

    /// PROTOCOL.md: screening, transplant and baseline/allocation come before the infusion; the infusion and the
    /// 24-hour check are the treatment; day 7 on is follow-up. SECOND-STUDY.md: screening, then dose visits at days
    /// 0–35 with their 24-hour checks (the last at day 36), then weeks 8–48.
    @Test func visitsTakeTheirEpochFromTheDefinitionsTimeline() throws {
        let one = try SDTMExport(study: try first())
        #expect(one.plannedEpoch == [
            "screening": "SCREENING", "transplant": "SCREENING", "baseline": "SCREENING", "infusion": "TREATMENT", "safety_24h": "TREATMENT",
            "day_7": "FOLLOW-UP", "day_14": "FOLLOW-UP", "day_28": "FOLLOW-UP", "month_3": "FOLLOW-UP", "month_6": "FOLLOW-UP",
        ])
        let two = try SDTMExport(study: try second())
        let treatment = ["w0", "s0", "w1", "s1", "w2", "s2", "w4", "s4", "w5", "s5"]
        var expected = ["screening": "SCREENING", "w8": "FOLLOW-UP", "w12": "FOLLOW-UP", "w24": "FOLLOW-UP", "w48": "FOLLOW-UP"]
        for visit in treatment { expected[visit] = "TREATMENT" }
        #expect(two.plannedEpoch == expected)
    }

    /// Adverse events take the epoch of their onset: before the infusion SCREENING, within the 24 hours after it
    /// TREATMENT, later FOLLOW-UP; in the second study day 20 (between the week-2 and week-4 doses) is still TREATMENT.
    @Test func adverseEventsAreDatedGradedAndPlacedInTheirEpoch() throws {
        let study = try first()
        let export = try SDTMExport(study: study)
        let subject = infused(study)
        func event(_ onset: String, serious: Bool = false) -> SDTMAdverseEvent {
            SDTMAdverseEvent(
                participantID: subject.participantID, term: "Fever", meddra: "10016558", soc: "General disorders and administration site conditions", ctcaeVersion: "4.03",
                grade: 2, onset: at(onset), serious: serious, seriousness: serious ? [.hospitalization] : [], attribution: .possible, action: .doseNotChanged,
                outcome: .recovered)
        }
        let ae = try table(export, "AE", SDTMSubjectData(subject: subject, adverseEvents: [event("2026-03-13T02:00Z"), event("2026-03-09T02:00Z"), event("2026-03-10T14:00Z", serious: true)]))
        #expect(ae.map { $0["EPOCH"] } == [.text("SCREENING"), .text("TREATMENT"), .text("FOLLOW-UP")])
        #expect(ae.map { $0["AESTDY"] } == [.number(-1), .number(1), .number(4)])
        #expect(ae[1]["AESER"] == .text("Y"))
        #expect(ae[1]["AESHOSP"] == .text("Y"))
        #expect(ae[1]["AESDTH"] == .text("N"))
        #expect(ae[0]["AESHOSP"] == .text(""))
        #expect(ae[0]["AEREL"] == .text("POSSIBLY RELATED"))
        #expect(ae[0]["AETOXGR"] == .text("2"))
        #expect(ae[0]["AEACN"] == .text("DOSE NOT CHANGED"))
        #expect(ae[0]["AEOUT"] == .text("RECOVERED/RESOLVED"))
        #expect(ae[0]["AELLTCD"] == .text("10016558"))

        let other = try second()
        let two = try SDTMExport(study: other)
        let participant = SDTMSubject(
            participantID: "q", site: "PLAGH5", screeningNumber: "007", status: .randomized,
            allocations: [SDTMAllocation(arm: "huc_msc", at: at("2026-05-04T08:00Z"))], firstDoseAt: at("2026-05-04T09:00Z"), lastDoseAt: at("2026-05-18T09:00Z"))
        var late = event("2026-05-24T09:00Z")
        late.participantID = "q"
        #expect(try table(two, "AE", SDTMSubjectData(subject: participant, adverseEvents: [late]))[0]["EPOCH"] == .text("TREATMENT"))
        late.onset = at("2026-06-10T09:00Z")
        #expect(try table(two, "AE", SDTMSubjectData(subject: participant, adverseEvents: [late]))[0]["EPOCH"] == .text("FOLLOW-UP"))
    }

    // MARK: Demographics, disposition, eligibility

    @Test func armsAndTheirNullReasonsInDM() throws {
        let study = try second()
        let export = try SDTMExport(study: study)
        let stage2 = SDTMSubject(
            participantID: "a", site: "PLAGH5", screeningNumber: "001", status: .randomized, sex: "M",
            allocations: [SDTMAllocation(arm: "huc_msc", at: at("2026-05-04T08:00Z")), SDTMAllocation(stage: "stage2", arm: "huc_msc_prolonged", at: at("2026-06-01T08:00Z"))],
            firstDoseAt: at("2026-05-04T09:00Z"))
        let dm = try table(export, "DM", SDTMSubjectData(subject: stage2))[0]
        #expect(dm["ARMCD"] == .text("HUC_MSC_PROLONGED"))
        #expect(dm["ARM"] == .text("hUC-MSC prolonged"))
        #expect(dm["ACTARMCD"] == .text("HUC_MSC_PROLONGED"))
        #expect(dm["ARMNRS"] == .text(""))
        #expect(dm["SEX"] == .text("M"))
        #expect(dm["SITEID"] == .text("PLAGH5"))

        var undosed = stage2
        undosed.allocations.removeLast()
        undosed.firstDoseAt = nil
        let waiting = try table(export, "DM", SDTMSubjectData(subject: undosed))[0]
        #expect(waiting["ARMCD"] == .text("HUC_MSC"))
        #expect(waiting["ACTARMCD"] == .text(""))
        #expect(waiting["ARMNRS"] == .text("ASSIGNED, NOT TREATED"))
        #expect(waiting["RFSTDTC"] == .text("2026-05-04T08:00:00"))

        let failed = SDTMSubject(
            participantID: "f", site: "PLAGH5", screeningNumber: "002", status: .screenFailed, sex: "F", birthDate: "2000-01-02",
            consentedAt: at("2026-05-01T08:00Z"), eligibility: SDTMEligibility(decidedAt: at("2026-05-02T08:00Z"), eligible: false, failedCriteria: ["age", "pregnancy"]))
        let f = try table(export, "DM", SDTMSubjectData(subject: failed))[0]
        #expect(f["ARMCD"] == .text(""))
        #expect(f["ARMNRS"] == .text("SCREEN FAILURE"))
        #expect(f["RFSTDTC"] == .text(""))
        #expect(f["RFPENDTC"] == .text("2026-05-02T08:00:00"))
        // Without RFSTDTC the age is at consent: born 2000-01-02, 26 on 2026-05-01.
        #expect(f["AGE"] == .number(26))

        // SDTMIG 3.3 §6.3.4: the inclusion not met is N, the exclusion met is Y; codes by position as TI gives them.
        let ie = try table(export, "IE", SDTMSubjectData(subject: failed))
        #expect(ie.map { $0["IETESTCD"] } == [.text("EXCL10"), .text("INCL01")])
        #expect(ie.map { $0["IEORRES"] } == [.text("Y"), .text("N")])
        #expect(ie[1]["IETEST"] == .text("Aged 18-70 years."))
        #expect(ie[1]["IEDY"] == .missing(.standard))
        let ti = try design(export, "TI")
        #expect(ti.first { $0["IETESTCD"] == .text("EXCL10") }?["IETEST"] == ie[0]["IETEST"])
        var unknown = failed
        unknown.eligibility?.failedCriteria = ["no_such_criterion"]
        #expect(throws: SDTMError.unknownCriterion(subject: "f", criterion: "no_such_criterion")) { try export.rows("IE", for: SDTMSubjectData(subject: unknown)) }

        let ds = try table(export, "DS", SDTMSubjectData(subject: failed))
        #expect(ds.map { $0["DSDECOD"] } == [.text("INFORMED CONSENT OBTAINED"), .text("SCREEN FAILURE")])
        #expect(ds.map { $0["DSCAT"] } == [.text("PROTOCOL MILESTONE"), .text("DISPOSITION EVENT")])
    }

    @Test func dispositionNamesTheArmOnlyWhenUnblinded() throws {
        let study = try second()
        var subject = SDTMSubject(
            participantID: "a", site: "PLAGH5", screeningNumber: "001", status: .completed, consentedAt: at("2026-05-01T08:00Z"),
            allocations: [SDTMAllocation(arm: "huc_msc", at: at("2026-05-04T08:00Z")), SDTMAllocation(stage: "stage2", arm: "huc_msc_standard", at: at("2026-06-01T08:00Z"))],
            firstDoseAt: at("2026-05-04T09:00Z"), lastDoseAt: at("2026-06-08T09:00Z"))
        subject.disposition = SDTMDisposition(reason: .completed, date: .day("2027-04-05"))
        let open = try table(try SDTMExport(study: study), "DS", SDTMSubjectData(subject: subject))
        #expect(open.map { $0["DSTERM"] } == [
            .text("INFORMED CONSENT OBTAINED"), .text("RANDOMIZED TO hUC-MSC"), .text("RANDOMIZED TO hUC-MSC standard (Stage-2 randomization)"), .text("COMPLETED"),
        ])
        #expect(open.map { $0["DSSTDY"] } == [.number(-3), .number(1), .number(29), .number(337)])
        // The enrolment randomization ends screening; the stage-2 one falls in treatment; completion in follow-up.
        #expect(open.map { $0["EPOCH"] } == [.text("SCREENING"), .text("SCREENING"), .text("TREATMENT"), .text("FOLLOW-UP")])
        // In the first study's control arm, without doses, the allocation is time zero (RFSTDTC) and still ends screening.
        let firstStudy = try first()
        let control = SDTMSubject(
            participantID: "c", site: "SYSU3", screeningNumber: "S-002", status: .randomized, consentedAt: at("2026-03-02T01:00Z"),
            allocations: [SDTMAllocation(arm: "control", at: at("2026-03-12T01:00Z"))])
        let controlData = SDTMSubjectData(subject: control)
        let export = try SDTMExport(study: firstStudy)
        let dm = try table(export, "DM", controlData)[0]
        #expect(dm["RFSTDTC"] == .text("2026-03-12T09:00:00") && dm["RFXSTDTC"] == .text(""))
        #expect(dm["ACTARMCD"] == .text("CONTROL") && dm["ARMNRS"] == .text(""))
        let randomized = try #require(try table(export, "DS", controlData).first { $0["DSDECOD"] == .text("RANDOMIZED") })
        #expect(randomized["EPOCH"] == .text("SCREENING") && randomized["DSSTDY"] == .number(1))

        let masked = try table(try SDTMExport(study: study, blinded: true), "DS", SDTMSubjectData(subject: subject))
        #expect(masked.map { $0["DSTERM"] } == [.text("INFORMED CONSENT OBTAINED"), .text("RANDOMIZED"), .text("RANDOMIZED (Stage-2 randomization)"), .text("COMPLETED")])
    }

    // MARK: Blinded form

    @Test func blindedFormDropsArmsAndGivesExposureAsCollected() throws {
        let study = try second()
        let open = try SDTMExport(study: study)
        let blinded = try SDTMExport(study: study, blinded: true)
        let armVariables = ["ARMCD", "ARM", "ACTARMCD", "ACTARM", "ARMNRS", "ACTARMUD"]
        #expect(armVariables.allSatisfy { open.domain("DM")?.variable($0) != nil })
        #expect(armVariables.allSatisfy { blinded.domain("DM")?.variable($0) == nil })
        // No form of the second study records vital signs, so there is no VS.
        #expect(open.domains.map(\.name) == ["DM", "DS", "IE", "EX", "AE", "LB", "SV", "TS", "TA", "TE", "TV", "TI"])
        #expect(blinded.domains.map(\.name) == ["DM", "DS", "IE", "EC", "AE", "LB", "SV", "TS", "TE", "TV", "TI"])
        #expect(throws: SDTMError.unknownDomain("TA")) { try blinded.designRows("TA") }
        #expect(try design(blinded, "TE").map { $0["ETCD"] } == [.text("SCRN"), .text("BLINDED"), .text("FU")])

        // Week 0 is planned under one name in every arm, but as cells in two arms and as placebo in one: the name
        // shows, the amount does not. Week 4 is placebo in two arms and cells in the third: the same.
        let subject = SDTMSubject(
            participantID: "a", site: "PLAGH5", screeningNumber: "001", status: .randomized,
            allocations: [SDTMAllocation(arm: "huc_msc", at: at("2026-05-04T08:00Z")), SDTMAllocation(stage: "stage2", arm: "huc_msc_prolonged", at: at("2026-06-01T08:00Z"))],
            firstDoseAt: at("2026-05-04T09:00Z"), lastDoseAt: at("2026-06-01T09:00Z"))
        let doses = [
            SDTMDose(participantID: "a", dose: "d0", given: true, startedAt: at("2026-05-04T09:00Z"), endedAt: at("2026-05-04T10:00Z"), lot: "LOT-1"),
            SDTMDose(participantID: "a", dose: "d1", given: false, skipReason: "Grade 3 infusion reaction after week 0"),
            SDTMDose(participantID: "a", dose: "d4", given: true, startedAt: at("2026-06-01T09:00Z"), lot: "LOT-2"),
        ]
        let data = SDTMSubjectData(subject: subject, doses: doses)
        let ec = try table(blinded, "EC", data)
        #expect(ec.map { $0["ECTRT"] } == [.text("Week 0 infusion"), .text("Week 1 infusion"), .text("Week 4 infusion")])
        #expect(ec.map { $0["ECOCCUR"] } == [.text("Y"), .text("N"), .text("Y")])
        #expect(ec[1]["ECREASOC"] == .text("Grade 3 infusion reaction after week 0"))
        #expect(ec.allSatisfy { $0["ECDOSE"] == .missing(.standard) && $0["ECDOSU"] == .text("") })
        #expect(ec[0]["ECROUTE"] == .text("INTRAVENOUS"))
        #expect(ec[2]["ECSTDY"] == .number(29))
        #expect(blinded.domain("EC")?.variable("ECLOT") == nil)
        #expect(throws: SDTMError.unknownDomain("EX")) { try blinded.rows("EX", for: data) }

        // Unblinded, EX names the product and its amount, and leaves out the dose not given.
        let ex = try table(open, "EX", data)
        #expect(ex.map { $0["EXTRT"] } == [.text("hUC-MSC"), .text("hUC-MSC")])
        #expect(ex.map { $0["EXDOSE"] } == [.number(150_000_000), .number(150_000_000)])
        #expect(ex.map { $0["EXLOT"] } == [.text("LOT-1"), .text("LOT-2")])
        #expect(ex[0]["EXENDTC"] == .text("2026-05-04T10:00:00"))

        let define = DefineXML.document(study: study, domains: blinded.domains, blinded: true)
        #expect(define.contains("def:CommentOID=\"COM.BLINDED\""))
        #expect(!define.contains("IT.DM.ARMCD") && !define.contains("IG.TA") && !define.contains("IG.EX\""))
        #expect(define.contains("<def:leaf ID=\"LF.EC\" xlink:href=\"ec.xpt\">"))
        let unblinded = DefineXML.document(study: study, domains: open.domains, blinded: false)
        #expect(unblinded.contains("IT.DM.ARMCD") && unblinded.contains("<def:leaf ID=\"LF.TA\" xlink:href=\"ta.xpt\">") && !unblinded.contains("COM.BLINDED"))
    }

    // MARK: Trial design

    /// Parameters FDA's Study Data Technical Conformance Guide asks of every TS, each with a value or a null flavour
    /// (never both), for both studies.
    @Test(arguments: [false, true])
    func trialSummaryHasTheRequiredParameters(secondStudy: Bool) throws {
        let study = try secondStudy ? second() : first()
        let ts = try design(try SDTMExport(study: study), "TS")
        let required = [
            "ACTSUB", "ADAPT", "ADDON", "AGEMAX", "AGEMIN", "HLTSUBJI", "INDIC", "INTMODEL", "INTTYPE", "LENGTH", "NARMS", "OBJPRIM", "OUTMSPRI", "PLANSUB",
            "RANDOM", "REGID", "SDTIGVER", "SDTMVER", "SEXPOP", "SPONSOR", "SSTDTC", "STYPE", "TBLIND", "TCNTRL", "TDIGRP", "TINDTP", "TITLE", "TPHASE", "TRT",
            "TTYPE", "FCNTRY", "STOPRULE",
        ]
        let present = Set(ts.compactMap { $0["TSPARMCD"]?.text })
        #expect(Set(required).subtracting(present).isEmpty, "missing: \(Set(required).subtracting(present).sorted())")
        for row in ts {
            let value = row["TSVAL"]?.text ?? "", flavour = row["TSVALNF"]?.text ?? ""
            #expect(value.isEmpty != flavour.isEmpty, "\(row["TSPARMCD"]?.text ?? ""): TSVAL '\(value)' TSVALNF '\(flavour)'")
        }
        func values(_ parm: String) -> [String] { ts.filter { $0["TSPARMCD"] == .text(parm) }.map { $0["TSVAL"]?.text ?? "" } }
        func flavour(_ parm: String) -> String? { ts.first { $0["TSPARMCD"] == .text(parm) }?["TSVALNF"]?.text }
        #expect(values("TITLE") == [SDTMText.ascii(study.identity.title)])
        #expect(values("SPONSOR") == [study.identity.sponsor])
        #expect(values("SDTIGVER") == ["3.3"])
        #expect(values("AGEMIN") == ["P18Y"])
        #expect(values("SEXPOP") == ["BOTH"])
        #expect(values("SSTDTC") == ["2023-09-30"])
        if secondStudy {
            // SECOND-STUDY.md: 18–70, double-blind, placebo, phase 1/2, 150 planned, 2:1 at stage 1, three arms in the
            // end (placebo, standard, prolonged). Length: screening from day −7 to week 48's window end (336 + 14).
            #expect(values("AGEMAX") == ["P70Y"])
            #expect(values("TBLIND") == ["DOUBLE BLIND"])
            #expect(values("TCNTRL") == ["PLACEBO"])
            #expect(values("TPHASE") == ["PHASE I/II TRIAL"])
            #expect(values("PLANSUB") == ["150"])
            #expect(values("NARMS") == ["3"])
            #expect(values("RANDQT") == ["0.67"])
            #expect(values("LENGTH") == ["P357D"])
            #expect(values("REGID") == ["NCT05985863", "2022YFC2304402"])
            #expect(ts.first { $0["TSVAL"] == .text("NCT05985863") }?["TSVCDREF"] == .text("ClinicalTrials.gov"))
            #expect(values("TRT") == ["hUC-MSC"])
            #expect(values("INTTYPE") == ["BIOLOGIC"])
            #expect(ts.first { $0["TSPARMCD"] == .text("TBLIND") }?["TSVALCD"] == .text("C15228"))
        } else {
            // PROTOCOL.md: 18–60, open label, control without intervention, early phase I, 1:1, two arms; the target is
            // not set, so PLANSUB has no information. Length: 28 days of screening before the transplant to month 6's
            // window end (180 + 14).
            #expect(values("AGEMAX") == ["P60Y"])
            #expect(values("TBLIND") == ["OPEN LABEL"])
            #expect(values("TPHASE") == ["PHASE 0 TRIAL"])
            #expect(flavour("PLANSUB") == "NI")
            #expect(flavour("TCNTRL") == "OTH")
            #expect(values("NARMS") == ["2"])
            #expect(values("RANDQT") == ["0.50"])
            #expect(values("LENGTH") == ["P222D"])
            #expect(values("DOSE") == ["10000000000"])
            #expect(values("DOSFRQ") == ["ONCE"])
            #expect(values("ROUTE") == ["INTRAVENOUS"])
            #expect(ts.filter { $0["TSPARMCD"] == .text("OUTMSSEC") }.count == study.endpoints.filter { $0.kind == .secondary }.count)
        }
    }

    /// SDTMIG 3.3 §7.4.2: a value past 200 characters goes on in TSVAL1, declared up front from the definition.
    @Test func longTrialSummaryValuesContinueInTSVAL1() throws {
        var study = try first()
        study.identity.title = String(repeating: "Mesenchymal vesicles ", count: 14)
        let export = try SDTMExport(study: study)
        let title = try #require(try design(export, "TS").first { $0["TSPARMCD"] == .text("TITLE") })
        let whole = (title["TSVAL"]?.text ?? "") + (title["TSVAL1"]?.text ?? "")
        #expect(whole == study.identity.title.trimmingCharacters(in: .whitespaces) || whole == study.identity.title)
        #expect((title["TSVAL"]?.text?.utf8.count ?? 0) <= 200)
        #expect(export.domain("TS")?.variable("TSVAL1") != nil)
        #expect(try SDTMExport(study: try first()).domain("TS")?.variable("TSVAL1") == nil)
    }

    @Test func armsElementsAndVisitsComeFromTheDefinition() throws {
        let study = try second()
        let export = try SDTMExport(study: study)
        let ta = try design(export, "TA")
        func path(_ arm: String) -> [XPORTValue?] { ta.filter { $0["ARMCD"] == .text(arm) }.map { $0["ETCD"] } }
        let prolonged = path("HUC_MSC_PROLONGED")
        #expect(prolonged.count == 4)
        #expect(prolonged.first == .text("SCRN") && prolonged[1] == .text("HUC_MSC") && prolonged.last == .text("FU"))
        #expect(prolonged[2] != .text("HUC_MSC") && prolonged[2] != path("HUC_MSC_STANDARD")[2])
        #expect(path("PLACEBO") == [.text("SCRN"), .text("PLACEBO"), .text("FU")])
        #expect(ta.first { $0["ARMCD"] == .text("HUC_MSC_PROLONGED") && $0["TAETORD"] == .number(2) }?["TABRANCH"]
            == .text("Stage-2 randomization: randomized to hUC-MSC prolonged"))
        #expect(ta.filter { $0["ARMCD"] == .text("HUC_MSC") }.map { $0["EPOCH"] } == [.text("SCREENING"), .text("TREATMENT"), .text("FOLLOW-UP")])
        let te = try design(export, "TE")
        #expect(Set(ta.compactMap { $0["ETCD"]?.text }) == Set(te.compactMap { $0["ETCD"]?.text }))

        let tv = try design(export, "TV")
        #expect(tv.map { $0["VISITNUM"] } == study.visits.indices.map { .number(Double($0 + 1)) })
        #expect(tv.first { $0["VISIT"] == .text("Week 1 (dose 2)") }?["TVSTRL"] == .text("7 days after First dose (week 0) (window: 1 day before to 2 days after)"))
        // Lengths declared from the definition: the longest visit name, the longest criterion text.
        #expect(export.domain("SV")?.variable("VISIT")?.length == study.visits.map { SDTMText.ascii($0.name).utf8.count }.max())
        let longest = (study.eligibility.inclusion + study.eligibility.exclusion).map { SDTMText.ascii($0.text).utf8.count }.max()
        #expect(export.domain("IE")?.variable("IETEST")?.length == longest)
    }

    // MARK: Vital signs

    /// VS reads a field only by its LOINC code (FHIR R4's vital-sign codes, as the first study's forms carry them):
    /// without the codes there is no VS; with them the infusion visit's three forms become three planned time points.
    @Test func vitalSignsAreReadFromFieldsWithVitalSignLOINCCodes() throws {
        let study = try first()
        var uncoded = study
        for f in uncoded.forms.indices {
            for i in uncoded.forms[f].fields.indices where uncoded.forms[f].fields[i].lab == nil { uncoded.forms[f].fields[i].loinc = nil }
        }
        #expect(try SDTMExport(study: uncoded).domain("VS") == nil)
        let export = try SDTMExport(study: study)
        let subject = infused(study)
        let forms = [
            SDTMFormRecord(participantID: subject.participantID, visit: "infusion", form: "vitals_after", values: ["measured_at": "2026-03-10T03:30Z", "temperature": "37.9", "heart_rate": "96"]),
            SDTMFormRecord(participantID: subject.participantID, visit: "infusion", form: "vitals_before", values: ["measured_at": "2026-03-10T01:45Z", "temperature": "36.8", "systolic_bp": "118"]),
            SDTMFormRecord(participantID: subject.participantID, visit: "safety_24h", form: "vitals", values: ["measured_at": "2026-03-11T02:00Z", "spo2": "97"]),
        ]
        let vs = try table(export, "VS", SDTMSubjectData(subject: subject, forms: forms))
        #expect(vs.map { $0["VSTESTCD"] } == [.text("SYSBP"), .text("TEMP"), .text("HR"), .text("TEMP"), .text("OXYSAT")])
        #expect(vs.map { $0["VSTPTNUM"] } == [.number(1), .number(1), .number(3), .number(3), .missing(.standard)])
        #expect(vs[0]["VSTPT"] == .text("Vital signs before the infusion"))
        #expect(vs[1]["VSORRESU"] == .text("C"))
        #expect(vs[1]["VSSTRESN"] == .number(36.8))
        #expect(vs[2]["VSSTRESU"] == .text("beats/min"))
        #expect(vs[0]["VSORRESU"] == .text("mmHg"))
        #expect(vs.map { $0["EPOCH"] } == [.text("SCREENING"), .text("SCREENING"), .text("TREATMENT"), .text("TREATMENT"), .text("TREATMENT")])
        #expect(vs[1]["VSLOBXFL"] == .text("Y") && vs[3]["VSLOBXFL"] == .text(""))
        #expect(vs[4]["VSDY"] == .number(2))

        let define = DefineXML.document(study: study, domains: export.domains, blinded: false)
        try checkDefine(define, domains: export.domains)
        #expect(define.contains("<def:leaf ID=\"LF.VS\" xlink:href=\"vs.xpt\">"))
        if let out = ProcessInfo.processInfo.environment["CASEBOOK_DEFINE_OUT"] {
            try define.write(toFile: "\(out)/define-\(study.code)-with-vitals.xml", atomically: true, encoding: .utf8)
        }

        var wrong = study
        for f in wrong.forms.indices { for i in wrong.forms[f].fields.indices where wrong.forms[f].fields[i].loinc == "8310-5" { wrong.forms[f].fields[i].unit = "K" } }
        #expect(throws: SDTMError.vitalSignUnit(form: "vitals_before", field: "temperature", unit: "K")) { try SDTMExport(study: wrong) }
    }

    // MARK: Transport files

    /// A value longer than its variable's declared length fails the write, naming dataset, variable and record.
    @Test func anOverLongValueFailsNamingDatasetVariableAndRecord() throws {
        let study = try first()
        let export = try SDTMExport(study: study)
        let subject = infused(study)
        func event(_ term: String) -> SDTMAdverseEvent {
            SDTMAdverseEvent(
                participantID: subject.participantID, term: term, meddra: "10016558", ctcaeVersion: "4.03", grade: 1, onset: at("2026-03-10T05:00Z"), serious: false,
                attribution: .unrelated, action: .notApplicable, outcome: .recovering)
        }
        let data = SDTMSubjectData(subject: subject, adverseEvents: [event("Fever"), event(String(repeating: "x", count: 250))])
        let ae = try #require(export.domain("AE"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sdtm-long-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: XPORTError.valueTooLong(dataset: "AE", variable: "AETERM", record: 2, length: 250, limit: 200)) {
            try XPORT.write(to: directory.appendingPathComponent(ae.fileName), dataset: ae.dataset, variables: ae.xportVariables, rows: export.rowSource("AE") { emit in try emit(data) })
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(ae.fileName).path))
    }

    /// Every dataset written and read back gives the rows it was made from; `fitToData` shrinks text lengths to the data.
    @Test(arguments: [false, true])
    func datasetsRoundTripThroughXPORT(blinded: Bool) throws {
        let study = try second()
        let export = try SDTMExport(study: study, blinded: blinded, options: SDTMOptions(actualSubjects: 2, dataCutoff: at("2026-07-01T00:00Z")))
        let a = SDTMSubject(
            participantID: "a", site: "PLAGH5", screeningNumber: "001", status: .randomized, sex: "F", birthDate: "1970-06-30", consentedAt: at("2026-05-01T08:00Z"),
            eligibility: SDTMEligibility(decidedAt: at("2026-05-03T08:00Z"), eligible: true), allocations: [SDTMAllocation(arm: "placebo", at: at("2026-05-04T08:00Z"))],
            firstDoseAt: at("2026-05-04T09:00Z"), lastDoseAt: at("2026-05-04T09:00Z"))
        let b = SDTMSubject(
            participantID: "b", site: "PLAGH5", screeningNumber: "002", status: .screenFailed, sex: "M", birthDate: "1950-01-01", consentedAt: at("2026-05-02T08:00Z"),
            eligibility: SDTMEligibility(decidedAt: at("2026-05-03T08:00Z"), eligible: false, failedCriteria: ["age"]))
        let subjects = [
            SDTMSubjectData(
                subject: a,
                doses: [SDTMDose(participantID: "a", dose: "d0", given: true, startedAt: at("2026-05-04T09:00Z"), lot: "P-9")],
                labs: [SDTMLab(participantID: "a", visit: "w0", test: "INR", collectedAt: at("2026-05-04T07:00Z"), value: 1.83, unit: "ratio", standardValue: 1.83, standardUnit: "ratio", upperLimit: 1.2, grade: 2)],
                adverseEvents: [SDTMAdverseEvent(participantID: "a", term: "Infusion related reaction", meddra: "10051792", soc: "Injury, poisoning and procedural complications", ctcaeVersion: "5.0", grade: 1, onset: at("2026-05-04T10:00Z"), resolved: at("2026-05-04T12:00Z"), serious: false, attribution: .probable, action: .drugInterrupted, outcome: .recovered)],
                visits: [SDTMVisitRecord(participantID: "a", visit: "screening", start: .day("2026-05-01")), SDTMVisitRecord(participantID: "a", visit: "w0", start: .instant(at("2026-05-04T08:30Z")))]),
            SDTMSubjectData(subject: b),
        ]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sdtm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let written = try export.write(to: directory, subjects: { emit in for s in subjects { try emit(s) } }, lengths: .fitToData)
        #expect(written.map(\.name) == export.domains.map(\.name))
        for domain in written {
            let member = try #require(try XPORT.read(contentsOf: directory.appendingPathComponent(domain.fileName)).members.first)
            #expect(member.dataset.name == domain.name && member.dataset.label == domain.label)
            #expect(member.variables.map(\.name) == domain.variables.map(\.name))
            #expect(member.variables.map(\.length) == domain.variables.map(\.length), "\(domain.name)")
            let expected = SDTMExport.designDomains.contains(domain.name)
                ? try export.designRows(domain.name) : try subjects.flatMap { try export.rows(domain.name, for: $0) }
            #expect(member.rows == expected, "\(domain.name)")
        }
        let dm = try #require(try XPORT.read(contentsOf: directory.appendingPathComponent("dm.xpt")).members.first)
        #expect(dm.values(of: "USUBJID") == [.text("UCMSC-ACLF-PLAGH5-001"), .text("UCMSC-ACLF-PLAGH5-002")])
        // The written lengths fit the data: USUBJID is declared for 32-character screening numbers, written at 21.
        #expect(dm.variables.first { $0.name == "USUBJID" }?.length == 21)
        let ts = try #require(try XPORT.read(contentsOf: directory.appendingPathComponent("ts.xpt")).members.first)
        let parms = ts.values(of: "TSPARMCD") ?? []
        #expect(ts.values(of: "TSVAL")?[parms.firstIndex(of: .text("ACTSUB")) ?? 0] == .text("2"))
        #expect(ts.values(of: "TSVAL")?[parms.firstIndex(of: .text("DCUTDTC")) ?? 0] == .text("2026-07-01T00:00:00"))

        // The Define-XML of what was written names each file and every variable with its written length.
        let define = DefineXML.document(study: study, domains: written, blinded: blinded)
        try checkDefine(define, domains: written)
        if let out = ProcessInfo.processInfo.environment["CASEBOOK_DEFINE_OUT"] {
            try define.write(toFile: "\(out)/define-\(study.code)\(blinded ? "-blinded" : "").xml", atomically: true, encoding: .utf8)
        }
    }

    // MARK: Define-XML

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func defineDescribesEveryDatasetOfBothStudies(secondStudy: Bool, blinded: Bool) throws {
        let study = try secondStudy ? second() : first()
        let export = try SDTMExport(study: study, blinded: blinded)
        let define = DefineXML.document(study: study, domains: export.domains, blinded: blinded)
        try checkDefine(define, domains: export.domains)
        if let out = ProcessInfo.processInfo.environment["CASEBOOK_DEFINE_OUT"] {
            try define.write(toFile: "\(out)/define-\(study.code)-declared\(blinded ? "-blinded" : "").xml", atomically: true, encoding: .utf8)
        }
    }

    /// The NCI codes written for CDISC terms are those the SAS-written reference Define-XML gives the same terms.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: referenceDefine.path), "needs ../shared/reference/sdtm (absent in a fresh clone)"))
    func controlledTermCodesMatchTheReferenceDefine() throws {
        #if canImport(FoundationXML) || os(macOS)
        let document = try XMLDocument(contentsOf: referenceDefine)
        var codes: [String: [String: String]] = [:]
        for list in try document.nodes(forXPath: "//*[local-name()='CodeList']") {
            let listCode = try list.nodes(forXPath: "./*[local-name()='Alias']").compactMap { attribute($0, "Name") }.first
            guard let listCode else { continue }
            for item in try list.nodes(forXPath: "./*[local-name()='CodeListItem' or local-name()='EnumeratedItem']") {
                guard let value = attribute(item, "CodedValue") else { continue }
                let code = try item.nodes(forXPath: "./*[local-name()='Alias']").compactMap { attribute($0, "Name") }.first
                if let code { codes[listCode, default: [:]][value] = code }
            }
        }
        var compared = 0
        for (name, list) in CDISCTerminology.lists {
            guard let nci = list.nci, let known = codes[nci] else { continue }
            for (term, code) in list.terms {
                guard let theirs = known[term] else { continue }
                #expect(theirs == code, "\(name) \(term)")
                compared += 1
            }
        }
        #expect(compared > 100)
        #endif
    }
}

#if canImport(FoundationXML) || os(macOS)
/// An attribute's value by its name (FoundationXML's `attribute(forName:)` misses them in a default namespace).
private func attribute(_ node: XMLNode, _ name: String) -> String? {
    (node as? XMLElement)?.attributes?.first { $0.name == name }?.stringValue
}
#endif

/// What the schema cannot check: every reference in the document points at a definition in it, and the datasets
/// described are exactly those given, with their files and variables.
private func checkDefine(_ text: String, domains: [SDTMDomain]) throws {
    #if canImport(FoundationXML) || os(macOS)
    let document = try XMLDocument(xmlString: text)
    func values(_ path: String) throws -> [String] { try document.nodes(forXPath: path).compactMap(\.stringValue) }
    #expect(try values("//*[local-name()='ItemGroupDef']/@Name") == domains.map(\.name))
    #expect(try values("//*[local-name()='leaf']/@*[local-name()='href']") == domains.map(\.fileName))
    for (kind, reference) in [("ItemDef", "ItemRef/@ItemOID"), ("CodeList", "CodeListRef/@CodeListOID"), ("MethodDef", "ItemRef/@MethodOID"),
                              ("CommentDef", "@*[local-name()='CommentOID']"), ("ValueListDef", "ValueListRef/@ValueListOID"), ("WhereClauseDef", "WhereClauseRef/@WhereClauseOID")] {
        let defined = Set(try values("//*[local-name()='\(kind)']/@OID"))
        let path = reference.split(separator: "/").map { $0.hasPrefix("@") ? String($0) : "*[local-name()='\($0)']" }.joined(separator: "/")
        let used = Set(try values("//\(path)"))
        #expect(used.subtracting(defined).isEmpty, "\(kind) missing: \(used.subtracting(defined).sorted().prefix(5))")
        #expect(kind == "ItemDef" || kind == "CommentDef" || defined.subtracting(used).isEmpty, "\(kind) unused: \(defined.subtracting(used).sorted().prefix(5))")
    }
    for domain in domains {
        let lengths = try values("//*[local-name()='ItemDef'][starts-with(@OID, 'IT.\(domain.name).') and not(contains(substring-after(@OID, 'IT.\(domain.name).'), '.'))]/@Length")
        let expected = domain.variables.filter { $0.type == .text || $0.type.isNumeric }.map { String($0.length) }
        #expect(lengths == expected, "\(domain.name)")
    }
    #endif
}
