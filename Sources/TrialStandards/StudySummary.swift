import Foundation
import TrialDomain

/// A study definition as a clinician reads it on a terminal.
public enum StudySummary {
    public static func text(_ study: StudyDefinition) -> String {
        let id = study.identity
        var lines = [
            id.title,
            "\(study.code) · version \(study.version) · \(study.lifecycle.status?.title ?? "no status") in the registry, \(study.lifecycle.operatingStatus.title.lowercased()) here · \(id.phase) · \(id.allocation), \(id.interventionModel), masking \(id.masking)",
            "Sponsor: \(id.sponsor)",
            "",
            "Arms:",
        ]
        lines += study.arms.map { "  \($0.code)  \($0.name) (\($0.type), ratio \($0.ratio))" + ($0.interventions.isEmpty ? "" : ": \($0.interventions.joined(separator: ", "))") }
        lines += ["", "Interventions:"]
        lines += study.interventions.map { i in
            "  \(i.name): " + [i.dose?.summary, i.route, i.frequency].compactMap { $0 }.joined(separator: ", ")
        }
        lines += ["", "Schedule:"]
        let grid = ScheduleGrid(study: study)
        lines += grid.rows.map { "  \($0.name.padding(toLength: 24, withPad: " ", startingAt: 0)) \($0.timing.padding(toLength: 28, withPad: " ", startingAt: 0)) \($0.forms.joined(separator: ", "))" }
        lines += ["", "Endpoints:"]
        lines += study.endpoints.map { "  [\($0.kind.rawValue)] \($0.measure): \($0.timeFrame)" }
        lines += ["", "Eligibility:"]
        lines += study.eligibility.inclusion.map { "  include \($0.code): \($0.expression)" }
        lines += study.eligibility.exclusion.map { "  exclude \($0.code): \($0.expression)" }
        return lines.joined(separator: "\n")
    }
}
