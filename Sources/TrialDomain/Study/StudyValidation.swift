import Foundation

/// One thing wrong with a study definition: where, and which rule it breaks.
public struct StudyProblem: Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var rule: String
    public init(_ path: String, _ rule: String) {
        self.path = path
        self.rule = rule
    }
    public var description: String { "\(path): \(rule)" }
}

public struct StudyValidationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var problems: [StudyProblem]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Checks a definition as a whole; reports every problem, not just the first.
public enum StudyValidator {
    public static func problems(in study: StudyDefinition) -> [StudyProblem] {
        var problems: [StudyProblem] = []
        func add(_ path: String, _ rule: String) { problems.append(StudyProblem(path, rule)) }

        func unique(_ codes: [String], _ path: String) {
            var seen: Set<String> = []
            for code in codes {
                if code.trimmingCharacters(in: .whitespaces).isEmpty { add(path, "a code must not be empty") }
                if !seen.insert(code).inserted { add("\(path)[\(code)]", "duplicate code '\(code)'") }
            }
        }

        if study.schemaVersion != StudyDefinition.currentSchemaVersion {
            add("schemaVersion", "must be \(StudyDefinition.currentSchemaVersion)")
        }
        if study.code.isEmpty { add("code", "must not be empty") }
        if study.version < 1 { add("version", "must be 1 or more") }
        if study.identity.title.isEmpty { add("identity.title", "must not be empty") }

        // Lifecycle: dated, in order, and a reason where the registry asks for one.
        if study.lifecycle.history.isEmpty { add("lifecycle.history", "must hold at least the current status") }
        var previousDate = ""
        for (i, change) in study.lifecycle.history.enumerated() {
            let path = "lifecycle.history[\(i)]"
            if !isDate(change.date) { add("\(path).date", "must be a date as yyyy-MM-dd") }
            if change.date < previousDate { add("\(path).date", "must not be before the previous status change (\(previousDate))") }
            previousDate = change.date
            if change.status.needsReason && (change.reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
                add("\(path).reason", "a \(change.status.rawValue) status needs a reason")
            }
        }
        var previousOperating = ""
        for (i, change) in (study.lifecycle.operating ?? []).enumerated() {
            let path = "lifecycle.operating[\(i)]"
            if !isDate(change.date) { add("\(path).date", "must be a date as yyyy-MM-dd") }
            if change.date < previousOperating { add("\(path).date", "must not be before the previous operating status change (\(previousOperating))") }
            previousOperating = change.date
            if change.status.needsReason && (change.reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
                add("\(path).reason", "a \(change.status.rawValue) status needs a reason")
            }
        }
        for (name, value) in [
            ("start", study.lifecycle.dates.start), ("primaryCompletion", study.lifecycle.dates.primaryCompletion),
            ("completion", study.lifecycle.dates.completion), ("recordUpdated", study.lifecycle.dates.recordUpdated),
        ] {
            if let value, !isDate(value) { add("lifecycle.dates.\(name)", "must be a date as yyyy-MM-dd") }
        }
        if let target = study.lifecycle.enrollment.target, target < 0 { add("lifecycle.enrollment.target", "must not be negative") }

        unique(study.sites.map(\.code), "sites")
        unique(study.parameters.map(\.code), "parameters")
        for parameter in study.parameters {
            let path = "parameters[\(parameter.code)]"
            if (parameter.value == nil) == (parameter.range == nil) { add(path, "needs either a value or a range (a limit of the sites' reference range), not both") }
            if let range = parameter.range {
                if let test = study.labTest(range.test) {
                    if UnitConversions(study: study).toCanonical(analyte: test.analyte, unit: parameter.unit) != 1 {
                        add("\(path).unit", "a range's limit is in \(test.code)'s canonical unit, \(test.unit)")
                    }
                } else {
                    add("\(path).range.test", "names unknown lab '\(range.test)'")
                }
            }
        }
        for site in study.sites {
            for (i, range) in (site.referenceRanges ?? []).enumerated() {
                if study.labTest(range.test) == nil { add("sites[\(site.code)].referenceRanges[\(i)].test", "names unknown test '\(range.test)'") }
                if let low = range.low, let high = range.high, low > high { add("sites[\(site.code)].referenceRanges[\(i)]", "low \(low) is above high \(high)") }
                if let from = range.from, !isDate(from) { add("sites[\(site.code)].referenceRanges[\(i)].from", "must be a date as yyyy-MM-dd") }
            }
            if let zone = site.timeZone, TimeZone(identifier: zone) == nil {
                add("sites[\(site.code)].timeZone", "'\(zone)' is not a time zone of the tz database (such as Asia/Shanghai)")
            }
            for code in (site.parameters ?? [:]).keys.sorted() where study.parameter(code)?.range != nil {
                add("sites[\(site.code)].parameters.\(code)", "'\(code)' is read from the site's reference ranges; set it there")
            }
            for code in (site.parameters ?? [:]).keys.sorted() where study.parameter(code) == nil {
                add("sites[\(site.code)].parameters.\(code)", "names unknown parameter '\(code)'")
            }
        }

        unique(study.interventions.map(\.code), "interventions")
        unique(study.arms.map(\.code), "arms")
        if study.arms.isEmpty { add("arms", "a study needs at least one arm") }
        if !study.arms.isEmpty && !study.arms.contains(where: { $0.ratio > 0 }) { add("arms", "at least one arm must be allocated at enrolment (ratio 1 or more)") }
        for arm in study.arms {
            // 0: not allocated at enrolment, reached only through a later randomization.
            if arm.ratio < 0 { add("arms[\(arm.code)].ratio", "must be 0 or more") }
            if arm.ratio == 0 && !(study.randomizations ?? []).contains(where: { $0.assigns.values.contains { $0.values.contains(arm.code) } }) {
                add("arms[\(arm.code)].ratio", "an arm with ratio 0 is reached only through a later randomization, and none leads to it")
            }
            for code in arm.interventions where !study.interventions.contains(where: { $0.code == code }) {
                add("arms[\(arm.code)].interventions", "names unknown intervention '\(code)'")
            }
        }
        for intervention in study.interventions {
            if let dose = intervention.dose, dose.amount <= 0 { add("interventions[\(intervention.code)].dose.amount", "must be more than 0") }
        }

        unique(study.anchors.map(\.code), "anchors")
        let anchors = Set(study.anchors.map(\.code))
        let doseCodes = DoseRules.codes(of: study)
        for anchor in study.anchors {
            guard let source = anchor.source, !["allocation", "infusion", "first_dose"].contains(source) else { continue }
            if source.hasPrefix("dose:") {
                if !doseCodes.contains(String(source.dropFirst(5))) { add("anchors[\(anchor.code)].source", "names unknown dose '\(source.dropFirst(5))'") }
                continue
            }
            let parts = source.split(separator: ".").map(String.init)
            let field = parts.count == 2 ? study.form(parts[0])?.field(parts[1]) : nil
            if field == nil {
                add("anchors[\(anchor.code)].source", "must be allocation, first_dose, dose:CODE or a form.field; '\(source)' is none of these")
            } else if field?.type != .date && field?.type != .datetime {
                add("anchors[\(anchor.code)].source", "'\(source)' is not a date field")
            }
        }
        for code in doseCodes where anchors.contains(code) { add("arms", "dose code '\(code)' is also an anchor's code; a dose is an anchor of its own") }
        let armCodes = Set(study.arms.map(\.code))
        let timeCodes = anchors.union(doseCodes)
        for arm in study.arms {
            let doses = arm.doses ?? []
            unique(doses.map(\.code), "arms[\(arm.code)].doses")
            for dose in doses {
                let path = "arms[\(arm.code)].doses[\(dose.code)]"
                if !study.interventions.contains(where: { $0.code == dose.product }) { add("\(path).product", "names unknown intervention '\(dose.product)'") }
                if !(dose.amount > 0 && dose.amount.isFinite) { add("\(path).amount", "must be more than 0") }
                if dose.unit.trimmingCharacters(in: .whitespaces).isEmpty { add("\(path).unit", "must not be empty") }
                if !timeCodes.contains(dose.anchor) { add("\(path).anchor", "names unknown anchor or dose '\(dose.anchor)'") }
                if dose.anchor == dose.code { add("\(path).anchor", "a dose cannot be timed from itself") }
                if let window = dose.window, window.before.value < 0 || window.after.value < 0 { add("\(path).window", "must not be negative") }
                if let visit = dose.visit, study.visit(visit) == nil { add("\(path).visit", "names unknown visit '\(visit)'") }
                if let check = dose.check {
                    do { _ = try ExpressionScope(study: study).checkCondition(check) } catch { add("\(path).check", "\(error)") }
                }
            }
        }
        unique(study.visits.map(\.code), "visits")
        for visit in study.visits {
            let path = "visits[\(visit.code)]"
            if let anchor = visit.anchor, !timeCodes.contains(anchor) { add("\(path).anchor", "names unknown anchor '\(anchor)'") }
            for arm in visit.arms ?? [] where !armCodes.contains(arm) { add("\(path).arms", "names unknown arm '\(arm)'") }
            if let defines = visit.defines, !anchors.contains(defines) { add("\(path).defines", "names unknown anchor '\(defines)'") }
            if visit.anchor == nil && visit.defines == nil { add(path, "needs an anchor, or must define one") }
            if visit.anchor != nil && visit.target == nil { add("\(path).target", "a visit timed from an anchor needs a target") }
            if let window = visit.window {
                if window.before.value < 0 { add("\(path).window.before", "must not be negative") }
                if window.after.value < 0 { add("\(path).window.after", "must not be negative") }
            }
        }
        if let window = study.randomization.window {
            if !anchors.contains(window.anchor) { add("randomization.window.anchor", "names unknown anchor '\(window.anchor)'") }
            if window.earliest.seconds > window.latest.seconds { add("randomization.window", "earliest must not be after latest") }
        }

        unique(study.forms.map(\.code), "forms")
        let visitCodes = Set(study.visits.map(\.code))
        for form in study.forms {
            let path = "forms[\(form.code)]"
            unique(form.fields.map(\.code), "\(path).fields")
            for visit in form.visits where !visitCodes.contains(visit) { add("\(path).visits", "names unknown visit '\(visit)'") }
            for field in form.fields {
                let fieldPath = "\(path).fields[\(field.code)]"
                switch field.type {
                case .number, .integer:
                    if (field.unit ?? "").isEmpty { add("\(fieldPath).unit", "a number needs a unit ('1' when it has none)") }
                    if let range = field.range, let min = range.min, let max = range.max, min > max {
                        add("\(fieldPath).range", "min \(min) is above max \(max)")
                    }
                    if let typical = field.typical {
                        guard let low = typical.min, let high = typical.max, low <= high else {
                            add("\(fieldPath).typical", "needs a min and a max, min not above max"); break
                        }
                        if let min = field.range?.min, low < min { add("\(fieldPath).typical", "min \(low) lies below the field's range (\(min))") }
                        if let max = field.range?.max, high > max { add("\(fieldPath).typical", "max \(high) lies above the field's range (\(max))") }
                    }
                case .choice:
                    let choices = field.choices ?? []
                    if choices.isEmpty { add("\(fieldPath).choices", "a choice list needs at least one choice") }
                    unique(choices.map(\.code), "\(fieldPath).choices")
                default:
                    if field.choices != nil { add("\(fieldPath).choices", "only a choice field has choices") }
                    if field.range != nil { add("\(fieldPath).range", "only a number has a range") }
                    if field.typical != nil { add("\(fieldPath).typical", "only a number has a typical range") }
                }
            }
        }

        let scope = ExpressionScope(study: study)
        if let date = study.eligibility.date {
            let parts = date.split(separator: ".").map(String.init)
            let field = parts.count == 2 ? study.form(parts[0])?.field(parts[1]) : nil
            if field == nil || ![.date, .datetime].contains(field!.type) { add("eligibility.date", "'\(date)' must name a date field (form.field)") }
            if parts.count == 2, let visit = study.eligibilityVisit, study.form(parts[0])?.visits.contains(visit) == false {
                add("eligibility.date", "'\(date)' is not collected at the eligibility visit \(visit)")
            }
        }
        if let within = study.eligibility.samplesWithin, within.seconds < 0 { add("eligibility.samplesWithin", "must not be negative") }
        unique(study.eligibility.inclusion.map(\.code) + study.eligibility.exclusion.map(\.code), "eligibility")
        for (list, criteria) in [("inclusion", study.eligibility.inclusion), ("exclusion", study.eligibility.exclusion)] {
            for criterion in criteria {
                if criterion.expression.trimmingCharacters(in: .whitespaces).isEmpty {
                    add("eligibility.\(list)[\(criterion.code)].expression", "is empty: write the criterion as a condition over form data")
                    continue
                }
                do {
                    _ = try scope.checkCondition(criterion.expression)
                } catch let error as ExpressionError {
                    add("eligibility.\(list)[\(criterion.code)].expression", error.message)
                } catch {
                    add("eligibility.\(list)[\(criterion.code)].expression", "\(error)")
                }
            }
        }

        unique(study.endpoints.map(\.code), "endpoints")
        if !study.endpoints.contains(where: { $0.kind == .primary }) { add("endpoints", "a study needs a primary endpoint") }
        for endpoint in study.endpoints {
            guard let analysis = endpoint.analysis else { continue }
            let path = "endpoints[\(endpoint.code)].analysis"
            if let anchor = analysis.anchor, !anchors.contains(anchor) { add("\(path).anchor", "names unknown anchor '\(anchor)'") }
            if let window = analysis.window, window.value < 0 { add("\(path).window", "must not be negative") }
            if analysis.window != nil && analysis.anchor == nil && analysis.perDose != true { add("\(path).window", "a window counts from an anchor (or from each dose, with perDose): give one") }
            switch analysis.method {
            case .proportion:
                if (analysis.forms ?? []).isEmpty && analysis.adverseEvents == nil {
                    add(path, "a proportion needs forms or adverseEvents that say what the event is")
                }
            case .adverseEvents:
                break
            case .timeToEvent:
                if analysis.anchor == nil { add("\(path).anchor", "time to event counts from an anchor: give one") }
                if analysis.horizon == nil { add("\(path).horizon", "time to event is read at a horizon such as 12w: give one") }
                if (analysis.events ?? []).isEmpty { add("\(path).events", "time to event needs the events that end the time") }
            case .valueAtVisit, .changeFromBaseline:
                if (analysis.lab == nil) == (analysis.expression == nil) { add("\(path).lab", "\(analysis.method.rawValue) needs either a lab code or an expression") }
                if analysis.visit == nil { add("\(path).visit", "\(analysis.method.rawValue) needs a visit code") }
                if let source = analysis.expression {
                    do { _ = try scope.checkNumber(source) } catch { add("\(path).expression", "\(error)") }
                }
            }
            if let lab = analysis.lab, study.labTest(lab) == nil {
                add("\(path).lab", "names unknown lab '\(lab)' (known: \(study.labTests.map(\.code).joined(separator: ", ")))")
            }
            if let visit = analysis.visit, study.visit(visit) == nil { add("\(path).visit", "names unknown visit '\(visit)'") }
            for (i, rule) in (analysis.forms ?? []).enumerated() {
                guard study.form(rule.form) != nil else {
                    add("\(path).forms[\(i)].form", "names unknown form '\(rule.form)'")
                    continue
                }
                do {
                    _ = try scope.checkCondition(rule.event)
                } catch {
                    add("\(path).forms[\(i)].event", "\(error)")
                }
            }
            for (i, rule) in (analysis.events ?? []).enumerated() {
                guard let form = study.form(rule.form) else {
                    add("\(path).events[\(i)].form", "names unknown form '\(rule.form)'")
                    continue
                }
                do { _ = try scope.checkCondition(rule.event) } catch { add("\(path).events[\(i)].event", "\(error)") }
                let parts = rule.date.split(separator: ".").map(String.init)
                let field = parts.count == 2 && parts[0] == form.code ? form.field(parts[1]) : nil
                if field?.type != .date && field?.type != .datetime { add("\(path).events[\(i)].date", "must be a date field of form \(form.code), as \(form.code).field") }
            }
            if analysis.perDose == true && analysis.adverseEvents == nil { add("\(path).perDose", "per dose counts adverse events: give adverseEvents") }
            if let minGrade = analysis.adverseEvents?.minGrade, !(1...5).contains(minGrade) {
                add("\(path).adverseEvents.minGrade", "must be a CTCAE grade from 1 to 5")
            }
            for term in analysis.adverseEvents?.terms ?? [] where term.count != 8 || !term.allSatisfy(\.isNumber) {
                add("\(path).adverseEvents.terms", "'\(term)' is not an 8-digit MedDRA code")
            }
        }

        let randomization = study.randomization
        if !["permuted_blocks", "minimization"].contains(randomization.method) {
            add("randomization.method", "must be permuted_blocks or minimization")
        }
        let ratioSum = study.arms.map(\.ratio).reduce(0, +)
        if randomization.method == "permuted_blocks" {
            if randomization.blockSizes.isEmpty { add("randomization.blockSizes", "permuted blocks need at least one block size") }
            for size in randomization.blockSizes where ratioSum > 0 && (size <= 0 || size % ratioSum != 0) {
                add("randomization.blockSizes", "block size \(size) is not a multiple of the allocation ratio total \(ratioSum)")
            }
        }
        unique(randomization.factors.map(\.code), "randomization.factors")
        for factor in randomization.factors {
            let path = "randomization.factors[\(factor.code)]"
            if factor.cutoffs.isEmpty || factor.cutoffs != factor.cutoffs.sorted() || Set(factor.cutoffs).count != factor.cutoffs.count {
                add("\(path).cutoffs", "must be one or more cut points in ascending order")
            }
            do {
                _ = try scope.checkNumber(factor.expression)
            } catch {
                add("\(path).expression", "\(error)")
            }
        }

        if !study.consent.versions.contains(where: { $0.version == study.consent.current }) {
            add("consent.current", "names unknown consent version '\(study.consent.current)'")
        }
        unique(study.consent.versions.map(\.version), "consent.versions")
        if let participant = study.participant {
            for (key, reference, types) in [("sex", participant.sex, [FieldType.choice]), ("birthDate", participant.birthDate, [.date])] {
                guard let reference else { continue }
                let parts = reference.split(separator: ".").map(String.init)
                let field = parts.count == 2 ? study.form(parts[0])?.field(parts[1]) : nil
                if let field, !types.contains(field.type) { add("participant.\(key)", "'\(reference)' must be a \(types[0].rawValue) field") }
                if field == nil { add("participant.\(key)", "names unknown field '\(reference)'") }
            }
            if let female = participant.female, let sex = participant.sex {
                let parts = sex.split(separator: ".").map(String.init)
                let codes = parts.count == 2 ? study.form(parts[0])?.field(parts[1])?.choices?.map(\.code) ?? [] : []
                if !codes.contains(female) { add("participant.female", "'\(female)' is not one of \(sex)'s choices") }
            }
            if let end = participant.endOfStudy {
                let field = study.field(named: end.field)?.field
                if field == nil { add("participant.endOfStudy.field", "names unknown field '\(end.field)'") }
                if let field, field.type != .choice { add("participant.endOfStudy.field", "'\(end.field)' must be a choice field") }
                let codes = Set(field?.choices?.map(\.code) ?? [])
                for (key, listed) in [("completed", end.completed ?? []), ("lost", end.lost ?? []), ("dispositions", (end.dispositions ?? []).map(\.choice))] {
                    for code in listed where field != nil && !codes.contains(code) {
                        add("participant.endOfStudy.\(key)", "'\(code)' is not one of \(end.field)'s choices")
                    }
                }
                if let date = end.date {
                    let dated = study.field(named: date)?.field
                    if dated == nil { add("participant.endOfStudy.date", "names unknown field '\(date)'") }
                    if let dated, dated.type != .date && dated.type != .datetime { add("participant.endOfStudy.date", "'\(date)' must be a date field") }
                }
            }
        }
        for (i, lab) in (study.labs ?? []).enumerated() {
            let path = "labs[\(lab.code)]"
            if LabCatalogue.test(lab.code) != nil {
                let own = [("name", lab.name), ("unit", lab.unit), ("loinc", lab.loinc), ("ctcae", lab.ctcae)].filter { $0.1 != nil }.map(\.0)
                for key in own + (lab.plausible == nil ? [] : ["plausible"]) {
                    add("\(path).\(key)", "\(lab.code) is a lab of the catalogue: a study may only add its conversions")
                }
            } else {
                if lab.code.isEmpty || lab.code.count > 8 || !lab.code.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber) }) {
                    add("labs[\(i)].code", "'\(lab.code)' is not a lab of the catalogue; a lab the study adds needs a code of 1–8 capital letters or digits (SDTM LBTESTCD)")
                }
                if (lab.name ?? "").trimmingCharacters(in: .whitespaces).isEmpty { add("\(path).name", "a lab the catalogue lacks needs its name") }
                if (lab.unit ?? "").trimmingCharacters(in: .whitespaces).isEmpty { add("\(path).unit", "a lab the catalogue lacks needs its canonical unit") }
                let gradable = Set(LabCatalogue.tests.compactMap(\.ctcae))
                if let term = lab.ctcae, !gradable.contains(term) {
                    add("\(path).ctcae", "'\(term)' has no grading rules (terms: \(gradable.sorted().joined(separator: ", ")))")
                }
                if let p = lab.plausible, let low = p.min, let high = p.max, low >= high { add("\(path).plausible", "min must be below max") }
            }
            guard let test = study.labTest(lab.code) else { continue }
            for conversion in lab.conversions ?? [] where !(conversion.factor > 0 && conversion.factor.isFinite) {
                add("\(path).conversions[\(conversion.unit)].factor", "must be more than 0")
            }
            for conversion in lab.conversions ?? [] where Units.normal(conversion.unit) == Units.normal(test.unit) && conversion.factor != 1 {
                add("\(path).conversions[\(conversion.unit)]", "\(conversion.unit) is the canonical unit of \(test.code); its factor is 1")
            }
        }
        for form in study.forms {
            for field in form.fields {
                if let input = field.score, ScoreFunctions.inputs[input] == nil {
                    add("forms[\(form.code)].fields[\(field.code)].score", "names unknown score input '\(input)' (inputs: \(ScoreFunctions.inputs.keys.sorted().joined(separator: ", ")))")
                }
                guard let lab = field.lab else { continue }
                let path = "forms[\(form.code)].fields[\(field.code)].lab"
                guard let test = study.labTest(lab) else { add(path, "names unknown lab '\(lab)'"); continue }
                if field.type != .number && field.type != .integer { add(path, "only a number field holds a lab") }
                if let unit = field.unit, UnitConversions(study: study).toCanonical(analyte: test.analyte, unit: unit) == nil {
                    add("forms[\(form.code)].fields[\(field.code)].unit", "'\(unit)' does not convert to \(test.code)'s \(test.unit)")
                }
            }
        }
        problems += StageRules.problems(in: study)
        // Each derived field is checked with those before it only, so none can depend on itself.
        var known = ExpressionScope(study: study)
        let taken = Set(study.forms.flatMap { f in f.fields.map { "\(f.code).\($0.code)" } } + study.parameters.map(\.code) + [ConsentRule.name])
        unique((study.derived ?? []).map(\.code), "derived")
        for field in study.derived ?? [] {
            let path = "derived[\(field.code)]"
            if taken.contains(field.code) { add("\(path).code", "'\(field.code)' is already a field or parameter") }
            if field.code.contains(".") { add("\(path).code", "must not contain '.' (that names a form's field)") }
            do {
                let (expression, type) = try known.check(try ExpressionParser.parse(field.expression))
                known.fields[field.code] = (field.label, type)
                known.derived[field.code] = expression
            } catch { add("\(path).expression", "\(error)") }
        }
        for (i, term) in (study.adverseEventTerms ?? []).enumerated() {
            let path = "adverseEventTerms[\(i)]"
            if !["4.03", "5.0"].contains(term.version) { add("\(path).version", "must be 4.03 or 5.0") }
            if term.meddra.count != 8 || !term.meddra.allSatisfy(\.isNumber) { add("\(path).meddra", "'\(term.meddra)' is not an 8-digit MedDRA code") }
            if term.grades.isEmpty || !term.grades.allSatisfy({ (1...5).contains($0) }) { add("\(path).grades", "must be CTCAE grades from 1 to 5") }
            if term.term.trimmingCharacters(in: .whitespaces).isEmpty { add("\(path).term", "must not be empty") }
        }
        for role in study.blinding?.unblindedRoles ?? [] where Role(parsing: role) == nil {
            add("blinding.unblindedRoles", "'\(role)' is not a role (roles: \(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if let from = study.amendment?.from {
            if study.amendment?.appliesTo != .everyone { add("amendment.from", "a date applies only to an amendment for everyone") }
            if DateParsing.day(from) == nil { add("amendment.from", "'\(from)' is not a date as yyyy-MM-dd") }
        }
        for (path, rule) in EditChecks.problems(in: study) { add(path, rule) }
        problems += monitoringProblems(in: study)
        if study.safety.saeReportingHours < 1 { add("safety.saeReportingHours", "must be 1 or more") }
        if !SafetySettings.ctcaeVersions.contains(study.safety.ctcaeVersion) {
            add("safety.ctcaeVersion", "must be one of \(SafetySettings.ctcaeVersions.joined(separator: ", "))")
        }
        return problems
    }

    /// The stopping rules of `monitoring`, addressed `monitoring.stoppingRules[code]`; a bad design option is worded as
    /// the `casebook stopping-rule` command words it, named by its key here.
    static func monitoringProblems(in study: StudyDefinition) -> [StudyProblem] {
        guard let monitoring = study.monitoring else { return [] }
        var problems: [StudyProblem] = []
        func add(_ path: String, _ rule: String) { problems.append(StudyProblem(path, rule)) }
        // The command's wording without its option's name, which the path gives instead.
        func worded(_ error: StoppingRuleError) -> String {
            let text = error.description, prefix = "\(error.option): "
            return text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text
        }
        var seen: Set<String> = []
        let armCodes = Set(study.arms.map(\.code))
        let timeCodes = Set(study.anchors.map(\.code)).union(DoseRules.codes(of: study))
        let scope = ExpressionScope(study: study)
        for (i, rule) in monitoring.stoppingRules.enumerated() {
            if rule.code.trimmingCharacters(in: .whitespaces).isEmpty { add("monitoring.stoppingRules[\(i)].code", "a code must not be empty") }
            if !seen.insert(rule.code).inserted { add("monitoring.stoppingRules[\(rule.code)]", "duplicate code '\(rule.code)'") }
            let path = "monitoring.stoppingRules[\(rule.code)]"
            if rule.name.trimmingCharacters(in: .whitespaces).isEmpty { add("\(path).name", "must not be empty") }

            // Who is counted.
            if let arms = rule.arms {
                if arms.isEmpty { add("\(path).arms", "name at least one arm, or leave arms out to count every allocated participant") }
                for arm in arms where !armCodes.contains(arm) { add("\(path).arms", "names unknown arm '\(arm)'") }
                if rule.countedPopulation == .dosed {
                    for arm in study.arms where arms.contains(arm.code) && (arm.doses ?? []).isEmpty {
                        add("\(path).population", "arm '\(arm.code)' plans no dose, so with population dosed none of its participants is counted")
                    }
                }
            }

            // What the toxicity is, and when it counts.
            if let anchor = rule.anchor, !timeCodes.contains(anchor) { add("\(path).anchor", "names unknown anchor '\(anchor)'") }
            if let window = rule.window, window.value < 0 { add("\(path).window", "must not be negative") }
            if rule.perDose == true {
                if rule.anchor != nil { add("\(path).perDose", "each dose given opens its own window: give perDose or an anchor, not both") }
                if rule.window == nil { add("\(path).window", "each dose given opens a window: give its length, such as 24h") }
            } else if rule.anchor == nil {
                if rule.window != nil { add("\(path).window", "a window counts from an anchor (or from each dose, with perDose): give one") }
                if rule.adverseEvents != nil || rule.labs != nil {
                    add("\(path).anchor", "adverse events and labs count within a window from an anchor (or from each dose, with perDose): give one")
                }
            }
            if (rule.forms ?? []).isEmpty && rule.adverseEvents == nil && rule.labs == nil {
                add(path, "needs forms, adverseEvents or labs that say what the toxicity is")
            }
            for (j, form) in (rule.forms ?? []).enumerated() {
                guard study.form(form.form) != nil else {
                    add("\(path).forms[\(j)].form", "names unknown form '\(form.form)'")
                    continue
                }
                do { _ = try scope.checkCondition(form.event) } catch { add("\(path).forms[\(j)].event", "\(error)") }
            }
            if let minGrade = rule.adverseEvents?.minGrade, !(1...5).contains(minGrade) {
                add("\(path).adverseEvents.minGrade", "must be a CTCAE grade from 1 to 5")
            }
            for term in rule.adverseEvents?.terms ?? [] where term.count != 8 || !term.allSatisfy(\.isNumber) {
                add("\(path).adverseEvents.terms", "'\(term)' is not an 8-digit MedDRA code")
            }
            if let labs = rule.labs {
                if labs.tests.isEmpty { add("\(path).labs.tests", "name at least one lab") }
                for test in labs.tests where study.labTest(test) == nil {
                    add("\(path).labs.tests", "names unknown lab '\(test)' (known: \(study.labTests.map(\.code).joined(separator: ", ")))")
                }
                if !(1...5).contains(labs.minGrade) { add("\(path).labs.minGrade", "must be a CTCAE grade from 1 to 5") }
            }

            // The design, checked as ToxicityStoppingRule checks the same options.
            switch (rule.method, rule.prior) {
            case (.bayes, nil):
                add("\(path).prior", "required with method bayes: the Beta(a, b) prior on the toxicity rate, such as {a: 0.6, b: 2.4} (mean 0.2, weight of 3 participants)")
            case (.pocock, .some):
                add("\(path).prior", "applies to method bayes only; the Pocock-type rule has no prior")
            case (.bayes, let prior?):
                if !(prior.a.isFinite && prior.b.isFinite && prior.a > 0 && prior.b > 0) {
                    add("\(path).prior", worded(.priorShape(a: prior.a, b: prior.b)))
                }
            case (.pocock, nil): break
            }
            if !(rule.p0 > 0 && rule.p0 < 1) { add("\(path).p0", worded(.p0(rule.p0))) }
            if let certainty = rule.certainty, !(certainty > 0 && certainty < 1) { add("\(path).certainty", worded(.certainty(certainty))) }
            if let alpha = rule.alpha, !(alpha > 0 && alpha < 1) { add("\(path).alpha", worded(.alpha(alpha))) }
            switch (rule.certainty, rule.alpha) {
            case (.some, .some): add(path, "certainty/alpha: \(worded(.certaintyAndAlpha))")
            case (nil, nil): add(path, "certainty/alpha: \(worded(.neitherCertaintyNorAlpha))")
            default: break
            }
            if !(1...ToxicityStoppingRule.sampleSizeLimit).contains(rule.maxSampleSize) {
                add("\(path).maxSampleSize", worded(.maxSampleSize(rule.maxSampleSize)))
            }
        }
        return problems
    }

    public static func validate(_ study: StudyDefinition) throws {
        let problems = problems(in: study)
        if !problems.isEmpty { throw StudyValidationError(problems: problems) }
    }

    public static func isDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let month = Int(parts[1]), let day = Int(parts[2]), Int(parts[0]) != nil
        else { return false }
        return (1...12).contains(month) && (1...31).contains(day)
    }
}
