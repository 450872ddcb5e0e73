import Foundation
import Testing
@testable import TrialDomain

/// Every transition of the query state machine, by role, as the issue's rules state them: site staff (investigator,
/// coordinator) answer an open query; monitors and data managers close an open or answered one, reopen an answered
/// or closed one and cancel an open or answered one; no one else does anything; whoever answered cannot close.
@Suite struct QueryRuleTests {
    static let expected: [QueryAction: (roles: Set<Role>, from: [QueryStatus: QueryStatus])] = [
        .answer: ([.investigator, .coordinator], [.open: .answered]),
        .close: ([.monitor, .dataManager], [.open: .closed, .answered: .closed]),
        .reopen: ([.monitor, .dataManager], [.answered: .open, .closed: .open]),
        .cancel: ([.monitor, .dataManager], [.open: .cancelled, .answered: .cancelled]),
    ]

    static let cases: [(Role, QueryAction, QueryStatus)] = Role.allCases.flatMap { role in
        QueryAction.allCases.flatMap { action in QueryStatus.allCases.map { (role, action, $0) } }
    }

    @Test(arguments: cases)
    func eachTransitionIsAllowedOrRefusedAsTheRulesSay(role: Role, action: QueryAction, status: QueryStatus) {
        let rule = Self.expected[action]!
        let result = Result { try QueryRules.transition(from: status, kind: .query, action: action, role: role, actor: "someone", answeredBy: "site-user") }
        switch result {
        case .success(let next):
            #expect(rule.roles.contains(role))
            #expect(rule.from[status] == next)
        case .failure(let error as RuleError):
            if !rule.roles.contains(role) {
                guard case .forbidden = error else { Issue.record("\(role) \(action) from \(status): expected forbidden, got \(error)"); return }
            } else {
                #expect(rule.from[status] == nil, "\(role) \(action) from \(status) refused: \(error)")
                guard case .illegal = error else { Issue.record("\(role) \(action) from \(status): expected illegal, got \(error)"); return }
            }
        case .failure(let error):
            Issue.record("unexpected \(error)")
        }
    }

    @Test func whoeverAnsweredCannotClose() {
        #expect(throws: RuleError.forbidden(rule: "whoever answered a query cannot close it")) {
            try QueryRules.transition(from: .answered, kind: .query, action: .close, role: .dataManager, actor: "dora", answeredBy: "dora")
        }
        #expect(throws: Never.self) {
            try QueryRules.transition(from: .answered, kind: .query, action: .close, role: .dataManager, actor: "dora", answeredBy: "carl")
        }
    }

    @Test func notesThatAskNothingStartClosedAndCannotBeReopened() {
        #expect(QueryRules.initialStatus(.annotation) == .closed)
        #expect(QueryRules.initialStatus(.reasonForChange) == .closed)
        #expect(QueryRules.initialStatus(.query) == .open)
        #expect(throws: RuleError.self) {
            try QueryRules.transition(from: .closed, kind: .annotation, action: .reopen, role: .monitor, actor: "m", answeredBy: nil)
        }
    }

    @Test(arguments: Role.allCases)
    func onlyMonitorsAndDataManagersRaiseQueries(role: Role) {
        let raises = (try? QueryRules.checkRaise(.query, by: role)) != nil
        #expect(raises == [.monitor, .dataManager].contains(role))
        let notes = (try? QueryRules.checkRaise(.annotation, by: role)) != nil
        #expect(notes == [.monitor, .dataManager, .investigator, .coordinator].contains(role))
        #expect((try? QueryRules.checkRaise(.failedCheck, by: role)) == nil)
    }

    @Test func ageCountsWholeDaysAndOverdueNeedsAnActiveQueryPastItsDue() {
        let raised = Date(timeIntervalSince1970: 1_000_000)
        // 2 days and 23 hours is 2 whole days.
        #expect(QueryRules.ageInDays(raisedAt: raised, now: raised.addingTimeInterval(2 * 86_400 + 23 * 3_600)) == 2)
        let due = raised.addingTimeInterval(7 * 86_400)
        #expect(!QueryRules.isOverdue(status: .open, dueAt: due, now: due))
        #expect(QueryRules.isOverdue(status: .open, dueAt: due, now: due.addingTimeInterval(1)))
        #expect(QueryRules.isOverdue(status: .answered, dueAt: due, now: due.addingTimeInterval(1)))
        #expect(!QueryRules.isOverdue(status: .closed, dueAt: due, now: due.addingTimeInterval(1)))
        #expect(!QueryRules.isOverdue(status: .open, dueAt: nil, now: due.addingTimeInterval(1)))
    }
}

@Suite struct WriteGuardTests {
    let site = UUID(), otherSite = UUID(), participant = UUID(), other = UUID()

    func lock(_ kind: LockKind, _ level: LockLevel, site: UUID? = nil, participant: UUID? = nil, visit: String? = nil, form: String? = nil) -> DataLock {
        DataLock(id: UUID(), kind: kind, level: level, siteID: site, participantID: participant, visit: visit, form: form, reason: "r", lockedBy: "dm", lockedAt: Date())
    }

    @Test func aLockRefusesDataAndReviewAFreezeOnlyData() {
        let target = WriteTarget(siteID: site, participantID: participant, visit: "day_7", form: "labs")
        for kind in LockKind.allCases {
            let locks = [lock(kind, .study)]
            #expect(WriteGuard.refusing(target, kind: .data, locks: locks) != nil)
            #expect((WriteGuard.refusing(target, kind: .review, locks: locks) != nil) == (kind == .lock))
        }
    }

    @Test func eachLevelCoversItsOwnPlaceOnly() {
        let here = WriteTarget(siteID: site, participantID: participant, visit: "day_7", form: "labs")
        let labHere = WriteTarget(siteID: site, participantID: participant, visit: "day_7")
        let elsewhere = WriteTarget(siteID: otherSite, participantID: other, visit: "day_14", form: "clinical")
        let cases: [(DataLock, here: Bool, lab: Bool, elsewhere: Bool)] = [
            (lock(.lock, .study), true, true, true),
            (lock(.lock, .site, site: site), true, true, false),
            (lock(.lock, .participant, participant: participant), true, true, false),
            (lock(.lock, .visit, participant: participant, visit: "day_7"), true, true, false),
            // A form lock covers that form only, not the visit's lab results.
            (lock(.lock, .form, participant: participant, visit: "day_7", form: "labs"), true, false, false),
            (lock(.lock, .form, participant: participant, visit: "day_7", form: "clinical"), false, false, false),
        ]
        for (lock, expectHere, expectLab, expectElsewhere) in cases {
            #expect(lock.covers(here) == expectHere, "\(lock.level)")
            #expect(lock.covers(labHere) == expectLab, "\(lock.level) lab")
            #expect(lock.covers(elsewhere) == expectElsewhere, "\(lock.level) elsewhere")
        }
    }

    @Test func aLockOfTheWrongShapeIsRefused() {
        #expect(throws: QueryTargetError.self) { try lock(.lock, .visit, participant: participant).checkShape() }
        #expect(throws: QueryTargetError.self) { try lock(.lock, .study, site: site).checkShape() }
        #expect(throws: Never.self) { try lock(.freeze, .form, participant: participant, visit: "v", form: "f").checkShape() }
    }
}

@Suite struct SourceVerificationTests {
    @Test func theSampleIsFixedPerParticipantAndNearTheRate() {
        let ids = (0..<10_000).map { _ in UUID() }
        let share = Double(ids.filter { SourceVerification.sampled(participantID: $0, rate: 0.2) }.count) / Double(ids.count)
        // Binomial(10,000, 0.2): standard deviation 0.004; 0.02 is five of them.
        #expect(abs(share - 0.2) < 0.02)
        #expect(ids.allSatisfy { SourceVerification.sampled(participantID: $0, rate: 0.2) == SourceVerification.sampled(participantID: $0, rate: 0.2) })
        #expect(!ids.contains { SourceVerification.sampled(participantID: $0, rate: 0) })
        #expect(ids.allSatisfy { SourceVerification.sampled(participantID: $0, rate: 1) })
    }

    @Test func criticalValuesAreAlwaysRequiredAndStatesFollowTheVerifiedValue() {
        let settings = VerificationSettings(critical: ["lab.BILI"], sampleRate: 0)
        #expect(SourceVerification.required(item: "lab.BILI", participantID: UUID(), settings: settings))
        #expect(!SourceVerification.required(item: "lab.ALT", participantID: UUID(), settings: settings))
        #expect(SourceVerification.state(required: true, current: "2", verified: nil) == .pending)
        #expect(SourceVerification.state(required: false, current: "2", verified: nil) == .notRequired)
        #expect(SourceVerification.state(required: false, current: "2", verified: "2") == .verified)
        #expect(SourceVerification.state(required: true, current: "3", verified: "2") == .changed)
    }
}

@Suite struct SignedContentTests {
    @Test func theCanonicalTextIsSortedEscapedAndReadsBack() {
        let values = [SignedValue(key: "b/x.y", value: "two\nlines = a\\b"), SignedValue(key: "a/x.y", value: "1")]
        let text = SignedContent.canonical(values)
        #expect(text == "a/x.y=1\nb/x.y=two\\nlines \\= a\\\\b\n")
        #expect(SignedContent.parse(text) == values.sorted { $0.key < $1.key })
        #expect(SignedContent.changedKeys(values, [SignedValue(key: "a/x.y", value: "2")]) == ["a/x.y", "b/x.y"])
    }
}

@Suite struct DeviationRuleTests {
    let utc = SiteCalendar(zone: SiteCalendar.utc)
    func day(_ text: String) -> Date { DateParsing.instant(text + "T00:00")! }

    func visit(_ code: String, _ state: VisitState, done: Date? = nil, start: String? = nil, end: String? = nil) -> ScheduledVisit {
        ScheduledVisit(visit: code, name: code.uppercased(), target: nil, windowStart: start.map(day), windowEnd: end.map(day), doneAt: done, state: state)
    }

    @Test func lateVisitsAndSkippedOnesAreDeviationsButNotAnOverdueOneAtTheEnd() {
        let visits = [
            visit("a", .done, done: day("2026-01-02"), start: "2026-01-01", end: "2026-01-03"),
            visit("b", .overdue, start: "2026-01-05", end: "2026-01-06"),
            visit("c", .outOfWindow, done: day("2026-01-12"), start: "2026-01-08", end: "2026-01-10"),
            // Overdue with nothing after it: late so far, not yet missed.
            visit("d", .overdue, start: "2026-01-14", end: "2026-01-15"),
        ]
        let found = DeviationRules.fromSchedule(visits, entered: ["a", "c"], calendar: utc)
        #expect(found.map(\.kind) == [.missedAssessment, .visitWindow])
        #expect(found.map(\.visit) == ["b", "c"])
        // A visit begun but incomplete is not missed.
        #expect(DeviationRules.fromSchedule(visits, entered: ["a", "b", "c"], calendar: utc).map(\.visit) == ["c"])
        #expect(found[1].detail == "C done 2026-01-12, outside its window 2026-01-08 to 2026-01-10")
    }
}
