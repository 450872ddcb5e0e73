import Foundation
import TrialDomain
import Vapor

/// The OpenAPI 3.1 description of /api/v1. A test checks it lists exactly the registered routes.
enum OpenAPIDocument {
    struct Operation {
        var method: String
        var path: String
        var summary: String
        var body: String? = nil
        var success: (code: String, schema: String?)
        var errors: [String] = ["401", "403", "404", "422"]
    }

    static let operations: [Operation] = [
        .init(method: "get", path: "/api/v1/me", summary: "The signed-in user, role, permissions and sites", success: ("200", "Me"), errors: ["401"]),
        .init(method: "get", path: "/api/v1/sites", summary: "Sites the user belongs to (all, for an admin)", success: ("200", "SiteList"), errors: ["401"]),
        .init(method: "post", path: "/api/v1/sites", summary: "Create a site (admin)", body: "CreateSite", success: ("201", "Site"), errors: ["400", "401", "403", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/participants", summary: "A page of participants at the user's sites, in screening-number order (query: limit 1–500, default 50; after, the previous page's next cursor)", success: ("200", "ParticipantPage"), errors: ["401", "403", "422"]),
        .init(method: "post", path: "/api/v1/participants", summary: "Register a participant at one of the user's sites", body: "CreateParticipant", success: ("201", "Participant"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/participants/{id}", summary: "One participant", success: ("200", "Participant")),
        .init(method: "patch", path: "/api/v1/participants/{id}", summary: "Change a participant's status; a reason is required", body: "UpdateParticipant", success: ("200", "Participant"), errors: ["400", "401", "403", "404", "415", "422"]),
        .init(method: "delete", path: "/api/v1/participants/{id}", summary: "Withdraw a screening record entered in error, never allocated (investigators only); a reason is required; it stays in the audit trail and the screening log's count", body: "Reason", success: ("204", nil), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/participants/{id}/history", summary: "The participant's audit trail", success: ("200", "AuditEventList")),
        .init(method: "get", path: "/api/v1/tokens", summary: "The user's API tokens (hashes never leave the server)", success: ("200", "TokenList"), errors: ["401"]),
        .init(method: "post", path: "/api/v1/tokens", summary: "Create an API token; the secret is shown once", body: "CreateToken", success: ("201", "Token"), errors: ["400", "401", "415", "422"]),
        .init(method: "delete", path: "/api/v1/tokens/{id}", summary: "Revoke one of the user's API tokens", success: ("204", nil), errors: ["401", "404", "422"]),
        .init(method: "get", path: "/api/v1/audit/verify", summary: "Recompute the audit chain", success: ("200", "Verify"), errors: ["401", "403"]),
        .init(method: "get", path: "/api/v1/study", summary: "The study definition in force", success: ("200", "StudyDefinition"), errors: ["401", "404"]),
        .init(method: "get", path: "/api/v1/study/schema", summary: "The JSON Schema (2020-12) of the study-definition format", success: ("200", "JSONSchema"), errors: ["401"]),
        .init(method: "get", path: "/api/v1/study/schedule", summary: "Schedule of assessments: visits × forms", success: ("200", "Schedule"), errors: ["401", "404"]),
        .init(method: "get", path: "/api/v1/study/versions", summary: "Published versions of the definition", success: ("200", "StudyVersionList"), errors: ["401"]),
        .init(method: "post", path: "/api/v1/study/versions", summary: "Publish the next version (an amendment); a reason is required after version 1", body: "Publish", success: ("201", "StudyVersion"), errors: ["400", "401", "403", "415", "422"]),
        .init(method: "get", path: "/api/v1/study/versions/{version}", summary: "One version of the definition", success: ("200", "StudyDefinition"), errors: ["401", "404", "422"]),
        .init(method: "get", path: "/api/v1/study/diff", summary: "What changed between two versions (query: from, to)", success: ("200", "StudyChangeList"), errors: ["401", "404", "422"]),
        .init(method: "get", path: "/api/v1/participants/{id}/forms", summary: "The participant's form records, each with the study version it was collected under", success: ("200", "FormRecordList")),
        .init(method: "get", path: "/api/v1/participants/{id}/eligibility", summary: "Every criterion with its verdict (an inclusion met or not met, an exclusion applies or does not apply, or cannot tell), with its evidence", success: ("200", "EligibilityAssessment")),
        .init(method: "post", path: "/api/v1/participants/{id}/eligibility/decision", summary: "An investigator decides: a screen failure as soon as a criterion excludes, even while others cannot be told; eligible only when every criterion is met; refused while nothing excludes and something cannot be told. Data changed afterwards at the eligibility visit send an eligible participant back for review", success: ("200", "EligibilityOutcome")),
        .init(method: "get", path: "/api/v1/participants/{id}/consents", summary: "Consents and withdrawals", success: ("200", "ConsentList")),
        .init(method: "post", path: "/api/v1/participants/{id}/consents", summary: "Record informed consent to a form version", body: "NewConsent", success: ("201", "Consent"), errors: ["400", "401", "403", "404", "415", "422"]),
        .init(method: "post", path: "/api/v1/participants/{id}/consents/withdrawal", summary: "Withdraw consent: no further data, or no further contact", body: "Withdrawal", success: ("204", nil), errors: ["400", "401", "403", "404", "415", "422"]),
        .init(method: "get", path: "/api/v1/participants/{id}/allocation", summary: "The participant's arm, once allocated", success: ("200", "Allocation")),
        .init(method: "post", path: "/api/v1/participants/{id}/allocation", summary: "Allocate an eligible, consented participant; with {\"randomization\": CODE}, draw in a later randomization at its visit; repeating returns the same allocation; the arm only for those who may see arms. Eligibility is re-checked on the data as they are: 409 when the eligible decision no longer holds (the attempt is audited)", body: "AllocationRequest", success: ("200", "Allocation"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "post", path: "/api/v1/participants/{id}/unblinding", summary: "Emergency unblinding (investigator): with a reason, audited, shows this user alone this participant's arm", body: "Unblinding", success: ("200", "Unblinded"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/participants/{id}/doses", summary: "The participant's dose plan, each dose with its window and state (given, skipped, due, overdue, upcoming)", success: ("200", "ScheduledDoseList")),
        .init(method: "post", path: "/api/v1/participants/{id}/doses", summary: "Record a dose given (startedAt, endedAt, lot, expiry, weightKg, deviationReason when out of its window) or skipped (skipped: true, reason)", body: "NewDose", success: ("201", "DoseRecord"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/participants/{id}/schedule", summary: "Expected visits with windows: done, due, overdue, out of window", success: ("200", "ScheduledVisitList")),
        .init(method: "get", path: "/api/v1/deviations", summary: "Protocol deviations: doses given outside their window with the reason recorded, and eligibility contradicted by data entered after allocation", success: ("200", "DeviationList"), errors: ["401", "403"]),
        .init(method: "post", path: "/api/v1/deviations", summary: "Raise a protocol deviation by hand (site staff, monitor, data manager): visit-window, missed-assessment, consent, procedure or other", body: "NewDeviation", success: ("201", "Deviation"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "post", path: "/api/v1/deviations/{key}/review", summary: "Review a deviation and classify it important or not (ICH E3 Q&A R1): investigator, monitor, data manager; audited", body: "DeviationReview", success: ("204", nil), errors: ["400", "401", "403", "404", "415", "422"]),
        .init(method: "get", path: "/api/v1/exports/sdtm", summary: "SDTM datasets (SAS transport v5) and their Define-XML 2.1, as a zip; statisticians and data managers; a blinded reader always gets the blinded form (query: blinded=true for an unblinded reader, false refused to a blinded one)", success: ("200", nil), errors: ["401", "403", "422"]),
        .init(method: "get", path: "/api/v1/exports/odm", summary: "CDISC ODM 1.3.2 Snapshot with audit records and signatures; statisticians and data managers; blinded as for SDTM", success: ("200", nil), errors: ["401", "403", "422"]),
        .init(method: "get", path: "/api/v1/exports/fhir", summary: "HL7 FHIR R4 collection Bundle (ResearchStudy, ResearchSubject, pseudonymous Patient, Observation, AdverseEvent, MedicationAdministration); statisticians and data managers; blinded as for SDTM", success: ("200", nil), errors: ["401", "403", "422"]),
        .init(method: "get", path: "/api/v1/consort", summary: "The CONSORT 2010 flow from live data: assessed, excluded with reasons, allocated per arm and stage, dosed, lost, discontinued, analysed (arms pooled for blinded roles)", success: ("200", "ConsortFlow"), errors: ["401", "403"]),
        .init(method: "get", path: "/api/v1/monitoring/stopping-rules", summary: "Each toxicity stopping rule of the definition: its design, participants counted, toxicities and the boundary (counts blanked for blinded roles when the rule names arms)", success: ("200", "StoppingRuleStatusList"), errors: ["401", "403"]),
        .init(method: "get", path: "/api/v1/monitoring/alerts", summary: "Stopping-rule boundaries crossed, newest first (statisticians and the DSMB; counts zeroed for blinded roles)", success: ("200", "MonitoringAlertList"), errors: ["401", "403"]),
        .init(method: "get", path: "/api/v1/screening-log", summary: "Screened, eligible, failed with reasons, consented, randomized", success: ("200", "ScreeningLog"), errors: ["401", "403"]),
        .init(method: "get", path: "/api/v1/randomization/list", summary: "The concealed allocation list (statistician only)", success: ("200", "RandomizationList"), errors: ["401", "403", "404"]),
        .init(method: "post", path: "/api/v1/randomization/list", summary: "Generate the allocation list once, when the study goes live (statistician only)", body: "GenerateList", success: ("201", "GeneratedList"), errors: ["400", "401", "403", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/participants/{id}/labs", summary: "Lab results with CTCAE v4.03 and v5.0 grades, baseline grade and shift", success: ("200", "LabList")),
        .init(method: "post", path: "/api/v1/participants/{id}/labs", summary: "Record a lab result in the unit the site reports; graded on entry", body: "NewLab", success: ("201", "Lab"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/participants/{id}/scores", summary: "MELD, MELD-Na and MELD 3.0 at each visit, with their inputs", success: ("200", "VisitScoresList")),
        .init(method: "get", path: "/api/v1/participants/{id}/hys-law", summary: "Hy's law at each visit, by ULN and by baseline", success: ("200", "HysLawList")),
        .init(method: "get", path: "/api/v1/participants/{id}/adverse-events", summary: "Adverse events", success: ("200", "AdverseEventList")),
        .init(method: "post", path: "/api/v1/participants/{id}/adverse-events", summary: "Record an adverse event (CTCAE term, grade, seriousness, attribution)", body: "NewAdverseEvent", success: ("201", "AdverseEvent"), errors: ["400", "401", "403", "404", "415", "422"]),
        .init(method: "post", path: "/api/v1/adverse-events/{id}/report", summary: "Mark a serious adverse event reported to the sponsor", body: "Report", success: ("200", "AdverseEvent"), errors: ["400", "401", "403", "404", "415", "422"]),
        .init(method: "patch", path: "/api/v1/adverse-events/{id}", summary: "Follow an adverse event up: its grade, outcome or resolution, with a reason; audited old to new", body: "AdverseEventUpdate", success: ("200", "AdverseEvent"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/adverse-events/{id}/follow-ups", summary: "A serious event's follow-up reports", success: ("200", "FollowUpList")),
        .init(method: "post", path: "/api/v1/adverse-events/{id}/follow-ups", summary: "Record a follow-up report of a serious event (after its initial report), with when the next is due: that clock shows on the SAE list", body: "NewFollowUp", success: ("201", "FollowUp"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/serious-adverse-events", summary: "Serious adverse events with their reporting clocks; overdue ones flagged", success: ("200", "SAEList"), errors: ["401", "403"]),
        .init(method: "get", path: "/api/v1/ctcae/terms", summary: "Search the CTCAE catalogue (query: q, version)", success: ("200", "TermList"), errors: ["401"]),
        .init(method: "get", path: "/api/v1/primary-endpoint", summary: "The study's primary endpoint, as GET /api/v1/endpoints/{code} gives it", success: ("200", "EndpointResult"), errors: ["401", "403", "404"]),
        .init(method: "get", path: "/api/v1/endpoints", summary: "Every endpoint of the study, computed as its definition says: everyone, then each arm for those who may see arms", success: ("200", "EndpointResultList"), errors: ["401", "403", "422"]),
        .init(method: "get", path: "/api/v1/endpoints/{code}", summary: "One endpoint by its code", success: ("200", "EndpointResult"), errors: ["401", "403", "404", "422"]),
        .init(method: "put", path: "/api/v1/participants/{id}/visits/{visit}", summary: "Enter a whole visit at once: its forms and its lab results (in the site's units), checked together with every problem reported, saved in one transaction or not at all", body: "VisitEntry", success: ("200", "SavedVisit"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/queries", summary: "A page of queries at the user's sites, oldest first (query: status, site (code), participant (id), assignee (role), overdue=true, limit 1–500, after)", success: ("200", "QueryPage"), errors: ["401", "403", "422"]),
        .init(method: "post", path: "/api/v1/queries", summary: "Raise a query (monitor, data manager), or write an annotation or reason for change (site staff too) on a participant, a form at a visit or a lab result, optionally one field. 409 under a lock", body: "NewQuery", success: ("201", "Query"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/queries/{id}", summary: "One query with its thread", success: ("200", "Query")),
        .init(method: "post", path: "/api/v1/queries/{id}/transitions", summary: "Answer (site staff), close, reopen or cancel (monitor, data manager) a query; whoever answered cannot close. 403 for the wrong role, 409 for the wrong state or under a lock; refused attempts are audited", body: "QueryTransition", success: ("200", "Query"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/locks", summary: "Freezes and locks in force at the user's sites and on the whole study", success: ("200", "LockList"), errors: ["401", "403"]),
        .init(method: "post", path: "/api/v1/locks", summary: "Freeze (data entry stops, review goes on) or lock (everything stops) the study, a site, a participant, a visit or a form (data manager); a study lock records the SHA-256 of the dataset in the audit trail", body: "NewLock", success: ("201", "Lock"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "post", path: "/api/v1/locks/{id}/unlock", summary: "Lift a freeze or lock (data manager); a reason is required", body: "Reason", success: ("204", nil), errors: ["400", "401", "403", "404", "415", "422"]),
        .init(method: "put", path: "/api/v1/participants/{id}/labs/{visit}/{test}", summary: "Correct a saved lab result with a reason: graded again, the results that took it as baseline too; answers open queries on it; 409 under a lock", body: "LabCorrection", success: ("200", "Lab"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/participants/{id}/verifications", summary: "Every stored value of the participant with its source-verification state: verified, changed since verified, pending (critical, or the participant is in the sample) or not required", success: ("200", "VerificationItemList")),
        .init(method: "post", path: "/api/v1/participants/{id}/verifications", summary: "A monitor verifies one value (visit and item: form.field or lab.TEST) against source, as it now stands; 409 under a lock", body: "VerifyValue", success: ("201", "VerificationItem"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "get", path: "/api/v1/verifications/summary", summary: "What is left to verify, per site", success: ("200", "VerificationSummaryList"), errors: ["401", "403"]),
        .init(method: "get", path: "/api/v1/participants/{id}/signatures", summary: "The participant's electronic signatures, each with what it covers, its meaning, time (UTC and site time), the SHA-256 of the signed values, the audit chain head it is bound to, and whether the data are still those signed", success: ("200", "SignatureList")),
        .init(method: "post", path: "/api/v1/participants/{id}/signatures", summary: "The investigator signs the casebook (or one form: visit and form) with user ID and password and a meaning; 403 for wrong credentials, 409 once 5 wrong in a row have locked signing for 15 minutes; every attempt audited", body: "Sign", success: ("201", "Signature"), errors: ["400", "401", "403", "404", "409", "415", "422"]),
        .init(method: "put", path: "/api/v1/participants/{id}/forms/{visit}/{form}", summary: "Enter or correct one form at one visit; a correction needs a reason", body: "SaveForm", success: ("200", "FormRecord"), errors: ["400", "401", "403", "404", "415", "422"]),
    ]

    static func string(_ description: String? = nil, format: String? = nil, nullable: Bool = false, values: [String]? = nil) -> [String: Any] {
        var s: [String: Any] = ["type": nullable ? ["string", "null"] : "string"]
        if let description { s["description"] = description }
        if let format { s["format"] = format }
        if let values { s["enum"] = values }
        return s
    }

    static func object(_ properties: [String: Any], required: [String]) -> [String: Any] {
        ["type": "object", "properties": properties, "required": required, "additionalProperties": false]
    }

    static func list(_ item: String) -> [String: Any] { ["type": "array", "items": ["$ref": "#/components/schemas/\(item)"]] }

    static var schemas: [String: Any] {
        let participantStatuses = ParticipantStatus.allCases.map(\.rawValue)
        return [
            "Error": object(
                ["error": string("What went wrong, naming the field and the rule"), "status": ["type": "integer"], "requestId": string(nullable: true)],
                required: ["error", "status"]),
            "Site": object(["id": string(format: "uuid"), "code": string(), "name": string()], required: ["id", "code", "name"]),
            "SiteList": list("Site"),
            "CreateSite": object(["code": string("Letters, digits, '-' and '_'"), "name": string()], required: ["code", "name"]),
            "Me": object(
                ["username": string(), "role": string(), "permissions": ["type": "array", "items": ["type": "string"]], "sites": list("Site")],
                required: ["username", "role", "permissions", "sites"]),
            "Participant": object(
                [
                    "id": string(format: "uuid"), "siteId": string(format: "uuid"), "screeningNumber": string(),
                    "status": string(values: participantStatuses), "createdAt": string(format: "date-time"), "updatedAt": string(format: "date-time"),
                ], required: ["id", "siteId", "screeningNumber", "status", "createdAt", "updatedAt"]),
            "ParticipantPage": object(["items": list("Participant"), "next": string("The cursor of the next page; absent on the last", nullable: true)], required: ["items"]),
            "CreateParticipant": object(["siteCode": string(), "screeningNumber": string()], required: ["siteCode", "screeningNumber"]),
            "UpdateParticipant": object(["status": string(values: participantStatuses), "reason": string(nullable: true)], required: ["status"]),
            "Reason": object(["reason": string("Why the change is made")], required: ["reason"]),
            "AuditEvent": object(
                [
                    "sequence": ["type": "integer"], "occurredAt": string(format: "date-time"), "actor": string(), "action": string(values: ["create", "update", "delete"]),
                    "entity": string(), "entityId": string(), "reason": string(nullable: true),
                    "changes": ["type": "array", "items": object(["field": string(), "old": string(nullable: true), "new": string(nullable: true)], required: ["field"])],
                ], required: ["sequence", "occurredAt", "actor", "action", "entity", "entityId", "changes"]),
            "AuditEventList": list("AuditEvent"),
            "Token": object(
                [
                    "id": string(format: "uuid"), "name": string(), "prefix": string(), "createdAt": string(format: "date-time"),
                    "revokedAt": string(format: "date-time", nullable: true), "token": string("The secret; present only when created", nullable: true),
                ], required: ["id", "name", "prefix", "createdAt"]),
            "TokenList": list("Token"),
            "CreateToken": object(["name": string()], required: ["name"]),
            "StudyDefinition": ["type": "object", "description": "A study definition; its format is described in docs/study-definition.md"],
            "Schedule": object(
                ["forms": ["type": "array", "items": ["type": "string"]],
                 "rows": ["type": "array", "items": object(["visit": string(), "name": string(), "timing": string(), "forms": ["type": "array", "items": ["type": "string"]]], required: ["visit", "name", "timing", "forms"])]],
                required: ["forms", "rows"]),
            "StudyVersion": object(
                ["version": ["type": "integer"], "publishedAt": string(format: "date-time"), "publishedBy": string(), "reason": string(nullable: true)],
                required: ["version", "publishedAt", "publishedBy"]),
            "StudyVersionList": list("StudyVersion"),
            "Publish": object(["definition": ["$ref": "#/components/schemas/StudyDefinition"], "reason": string(nullable: true)], required: ["definition"]),
            "StudyChange": object(
                ["kind": string(values: ["added", "removed", "changed"]), "path": string(), "old": string(nullable: true), "new": string(nullable: true)],
                required: ["kind", "path"]),
            "StudyChangeList": list("StudyChange"),
            "FormRecord": object(
                [
                    "id": string(format: "uuid"), "visit": string(), "form": string(), "studyVersion": ["type": "integer"],
                    "values": ["type": "object", "additionalProperties": ["type": "string"]],
                    "createdAt": string(format: "date-time"), "updatedAt": string(format: "date-time"),
                ], required: ["id", "visit", "form", "studyVersion", "values", "createdAt", "updatedAt"]),
            "FormRecordList": list("FormRecord"),
            "SaveForm": object(
                ["values": ["type": "object", "additionalProperties": ["type": ["string", "number", "boolean"]]], "reason": string(nullable: true)],
                required: ["values"]),
            "VisitEntry": object(
                [
                    "forms": ["type": "object", "description": "Form code to its values", "additionalProperties": ["type": "object", "additionalProperties": ["type": ["string", "number", "boolean"]]]],
                    "labs": ["type": "array", "items": object(
                        ["test": string(), "value": ["type": "number"], "unit": string(), "collectedAt": string("yyyy-MM-ddTHH:mm, UTC unless an offset is given")],
                        required: ["test", "value", "unit", "collectedAt"])],
                    "reason": string("Needed when a form already entered is corrected", nullable: true),
                ], required: []),
            "SavedVisit": object(["forms": list("FormRecord"), "labs": list("Lab")], required: ["forms", "labs"]),
            "EligibilityAssessment": [
                "type": "object", "description": "studyVersion and criteria: code, kind, text, expression, result (met, not_met, cannot_tell), evidence, missing",
            ],
            "EligibilityOutcome": object(["outcome": string(values: ["eligible", "screen_failed"]), "assessment": ["$ref": "#/components/schemas/EligibilityAssessment"]], required: ["outcome", "assessment"]),
            "NewConsent": object(["formVersion": string(), "signedAt": string("yyyy-MM-ddTHH:mm, UTC unless an offset is given")], required: ["formVersion", "signedAt"]),
            "Consent": object(
                ["id": string(format: "uuid"), "formVersion": string(), "signedAt": string(format: "date-time"), "takenBy": string(),
                 "withdrawnAt": string(format: "date-time", nullable: true), "withdrawalScope": string(nullable: true)],
                required: ["id", "formVersion", "signedAt", "takenBy"]),
            "ConsentList": list("Consent"),
            "Withdrawal": object(["withdrawnAt": string(), "scope": string(values: ["no_further_data", "no_further_contact"]), "reason": string(nullable: true)], required: ["withdrawnAt", "scope"]),
            "Allocation": object(
                [
                    "randomization": string("The later randomization's code; absent for the one at enrolment", nullable: true),
                    "arm": string("Absent for a blinded user in a masked study", nullable: true), "allocatedAt": string(format: "date-time"), "allocatedBy": string(),
                ], required: ["allocatedAt", "allocatedBy"]),
            "NewDose": object(
                [
                    "dose": string("A dose code of the participant's plan"), "startedAt": string(format: "date-time"), "endedAt": string(format: "date-time"),
                    "lot": string(), "expiry": string(format: "date"), "weightKg": ["type": "number"], "deviationReason": string(),
                    "skipped": ["type": "boolean"], "reason": string("Why a skipped dose was not given"),
                ], required: ["dose"]),
            "DoseRecord": ["type": "object", "description": "The dose as recorded; amount and unit only for those who may see arms"],
            "ScheduledDoseList": ["type": "array", "items": ["type": "object", "description": "dose, name, route, target, windowStart, windowEnd, state, record; product, amount, placebo only for those who may see arms"]],
            "ScheduledVisitList": ["type": "array", "items": ["type": "object", "description": "visit, name, target, windowStart, windowEnd, doneAt, state"]],
            "ScreeningLog": ["type": "object", "description": "screened, eligible, screenFailed, consented, randomized, randomizedByArm, failures, enteredInError"],
            "RandomizationList": ["type": "object", "description": "method, seed, generatedAt and every slot"],
            "GenerateList": object(["seed": string("64 hexadecimal digits; drawn at random when absent", nullable: true)], required: []),
            "GeneratedList": object(["seed": string(), "positions": ["type": "integer"]], required: ["seed", "positions"]),
            "Lab": ["type": "object", "description": "A lab result: value in canonical unit, as entered, ULN/LLN, baseline, gradeV4, gradeV5 with their basis, baselineGrade, treatmentEmergent"],
            "LabList": list("Lab"),
            "NewLab": object(["visit": string(), "test": string("A lab code: the catalogue's, or one the study's definition adds"), "value": ["type": "number"], "unit": string(), "collectedAt": string()],
                required: ["visit", "test", "value", "unit", "collectedAt"]),
            "HysLawList": ["type": "array", "items": ["type": "object", "description": "visit, byULN, byBaseline, transaminaseMultipleOfULN, bilirubinMultipleOfULN"]],
            "VisitScoresList": ["type": "array", "items": ["type": "object", "description": "visit, scores, inputs"]],
            "AdverseEvent": ["type": "object", "description": "An adverse event with its CTCAE term, grade and definition, seriousness and reporting clock"],
            "AdverseEventList": list("AdverseEvent"),
            "NewAdverseEvent": object(
                ["meddra": string(), "grade": ["type": "integer"], "onsetAt": string(), "resolvedAt": string(nullable: true),
                 "seriousness": ["type": "array", "items": string(values: Seriousness.allCases.map(\.rawValue))],
                 "attribution": string(values: Attribution.allCases.map(\.rawValue)), "expected": ["type": "boolean"], "actionTaken": string(), "outcome": string(),
                 "awareAt": string(nullable: true)],
                required: ["meddra", "grade", "onsetAt", "attribution", "expected", "actionTaken", "outcome"]),
            "Report": object(["reportedAt": string()], required: ["reportedAt"]),
            "AdverseEventUpdate": object(
                ["grade": ["type": "integer", "minimum": 1, "maximum": 5], "outcome": string(), "resolvedAt": string("yyyy-MM-ddTHH:mm, UTC unless an offset is given"), "reason": string("Why it changes")],
                required: ["reason"]),
            "NewFollowUp": object(["submittedAt": string(), "text": string("At most 4,000 characters"), "nextDueAt": string(nullable: true)], required: ["submittedAt", "text"]),
            "FollowUp": object(
                ["id": string(format: "uuid"), "submittedAt": string(format: "date-time"), "text": string(), "nextDueAt": string(format: "date-time", nullable: true), "createdBy": string()],
                required: ["id", "submittedAt", "text", "createdBy"]),
            "FollowUpList": list("FollowUp"),
            "SAEList": ["type": "array", "items": ["type": "object", "description": "id, participantId, term, grade, awareAt, dueAt, reportedAt, overdue, hoursLeft, nextFollowUpDueAt, followUpOverdue"]],
            "TermList": ["type": "array", "items": ["type": "object", "description": "version, meddra, soc, term, grades, definition"]],
            "EndpointGroup": object(
                [
                    "arm": string("The arm's code; null for all participants", nullable: true), "n": ["type": "integer"],
                    "events": ["type": ["integer", "null"]], "proportion": ["type": ["number", "null"]], "lower": ["type": ["number", "null"]],
                    "upper": ["type": ["number", "null"]],
                    "summary": ["type": ["object", "null"], "description": "n, mean, sd, median, min, max"],
                    "worstGrades": ["type": ["object", "null"], "additionalProperties": ["type": "integer"]],
                    "doses": ["type": ["integer", "null"]], "doseEvents": ["type": ["integer", "null"]],
                    "survival": ["type": ["object", "null"], "description": "Kaplan–Meier at the horizon: at, estimate, standardError, atRisk, events, censored"],
                    "curve": ["type": ["object", "null"], "description": "The Kaplan–Meier curve: steps (days, atRisk, events, censored, estimate, standardError, lower, upper), n, events, censored, median, confidence"],
                ], required: ["n"]),
            "EndpointResult": object(
                [
                    "code": string(), "kind": string(values: ["primary", "secondary", "other"]), "measure": string(), "timeFrame": string(),
                    "method": string(nullable: true), "unit": string(nullable: true), "groups": list("EndpointGroup"),
                    "logRank": ["type": ["object", "null"], "description": "Log-rank test across the arms: groups, observed, expected, chiSquare, degreesOfFreedom, pValue"],
                ], required: ["code", "kind", "measure", "timeFrame", "groups"]),
            "EndpointResultList": list("EndpointResult"),
            "ConsortReason": object(["label": string(), "n": ["type": "integer", "minimum": 0]], required: ["label", "n"]),
            "ConsortArm": object(
                [
                    "code": string(), "name": string(), "allocated": ["type": "integer"], "received": ["type": "integer"], "notReceived": ["type": "integer"],
                    "notReceivedReasons": list("ConsortReason"), "lostToFollowUp": ["type": "integer"], "lostToFollowUpReasons": list("ConsortReason"),
                    "discontinued": ["type": "integer"], "discontinuedReasons": list("ConsortReason"), "analysed": ["type": "integer"],
                    "excludedFromAnalysis": ["type": "integer"], "excludedFromAnalysisReasons": list("ConsortReason"),
                ], required: ["code", "name", "allocated", "received", "notReceived", "analysed"]),
            "ConsortStage": object(["label": string(), "randomized": ["type": "integer"], "arms": list("ConsortArm")], required: ["label", "randomized", "arms"]),
            "ConsortFlow": object(
                ["assessed": ["type": "integer"], "excluded": ["type": "integer"], "excludedReasons": list("ConsortReason"), "stages": list("ConsortStage"), "pooled": ["type": "boolean"]],
                required: ["assessed", "excluded", "excludedReasons", "stages", "pooled"]),
            "StoppingBoundary": object(["n": ["type": "integer"], "stopIfAtLeast": ["type": "integer"]], required: ["n", "stopIfAtLeast"]),
            "StoppingRuleStatus": object(
                [
                    "code": string(), "name": string(), "method": string(values: ["bayes", "pocock"]), "p0": ["type": "number"], "alpha": ["type": ["number", "null"]],
                    "certainty": ["type": "number"], "nominalLevel": ["type": ["number", "null"]], "maxSampleSize": ["type": "integer"],
                    "n": ["type": ["integer", "null"], "description": "absent for a blinded reader of a rule over named arms"], "events": ["type": ["integer", "null"]],
                    "stopIfAtLeast": ["type": ["integer", "null"]], "crossed": ["type": "boolean"], "crossedAt": ["type": ["integer", "null"]],
                    "crossedEvents": ["type": ["integer", "null"]], "crossedBoundary": ["type": ["integer", "null"]],
                    "boundaries": list("StoppingBoundary"), "pooledArms": ["type": "boolean"], "isMasked": ["type": "boolean"],
                ], required: ["code", "name", "method", "p0", "certainty", "maxSampleSize", "crossed", "boundaries", "pooledArms", "isMasked"]),
            "StoppingRuleStatusList": list("StoppingRuleStatus"),
            "MonitoringAlert": object(
                [
                    "id": string(format: "uuid"), "rule": string(), "studyVersion": ["type": "integer"], "evaluated": ["type": "integer"], "events": ["type": "integer"],
                    "stopIfAtLeast": ["type": "integer"], "raisedAt": string(format: "date-time"),
                ], required: ["id", "rule", "studyVersion", "evaluated", "events", "stopIfAtLeast", "raisedAt"]),
            "MonitoringAlertList": list("MonitoringAlert"),
            "Unblinding": object(["reason": string("Why the blind must be broken for this participant")], required: ["reason"]),
            "Unblinded": object(["arm": string(), "unblindedFor": string()], required: ["arm", "unblindedFor"]),
            "AllocationRequest": object(["randomization": string("A later randomization's code; absent for the one at enrolment")], required: []),
            "JSONSchema": ["type": "object", "description": "A JSON Schema document"],
            "NewDeviation": object(
                ["participantId": string(format: "uuid"), "kind": string(values: DeviationKind.byHand.map(\.rawValue)), "visit": string(nullable: true), "detail": string("At most 4,000 characters")],
                required: ["participantId", "kind", "detail"]),
            "DeviationReview": object(["classification": string(values: DeviationClass.allCases.map(\.rawValue)), "note": string(nullable: true)], required: ["classification"]),
            "Deviation": ["$ref": "#/components/schemas/DeviationItem"],
            "DeviationList": list("DeviationItem"),
            "DeviationItem": object(
                [
                    "key": string("dose:ID for a dose out of its window, else the deviation's id"), "visit": string(nullable: true),
                    "classification": string(nullable: true, values: DeviationClass.allCases.map(\.rawValue)), "reviewedBy": string(nullable: true),
                    "reviewedAt": string(format: "date-time", nullable: true), "reviewNote": string(nullable: true),
                    "participantId": string(format: "uuid"), "screeningNumber": string(), "kind": string(values: DeviationKind.allCases.map(\.rawValue)),
                    "dose": string("The dose, for a dose given out of its window", nullable: true),
                    "startedAt": string("When the dose started, or when the deviation was raised", format: "date-time"),
                    "reason": string("The reason recorded with the dose, or what contradicts eligibility"), "recordedBy": string(),
                ], required: ["key", "participantId", "screeningNumber", "kind", "startedAt", "reason", "recordedBy"]),
            "QueryTarget": object(
                ["visit": string(nullable: true), "form": string(nullable: true), "lab": string("A lab test code", nullable: true), "field": string(nullable: true)],
                required: []),
            "NewQuery": object(
                [
                    "participantId": string(format: "uuid"), "kind": string(values: ["query", "reason-for-change", "annotation"]),
                    "target": ["$ref": "#/components/schemas/QueryTarget"], "text": string("At most 4,000 characters"),
                    "assignee": string(values: ["investigator", "coordinator", "monitor", "data-manager"]), "dueAt": string("yyyy-MM-ddTHH:mm; the study's due time when absent"),
                ], required: ["participantId", "text"]),
            "QueryTransition": object(["action": string(values: QueryAction.allCases.map(\.rawValue)), "text": string("Required to answer", nullable: true)], required: ["action"]),
            "Query": object(
                [
                    "id": string(format: "uuid"), "participantId": string(format: "uuid"), "screeningNumber": string(), "site": string(),
                    "kind": string(values: QueryKind.allCases.map(\.rawValue)), "status": string(values: QueryStatus.allCases.map(\.rawValue)),
                    "target": ["$ref": "#/components/schemas/QueryTarget"], "text": string(), "assignee": string(values: Role.allCases.map(\.rawValue)),
                    "dueAt": string(format: "date-time", nullable: true), "overdue": ["type": "boolean"], "ageDays": ["type": "integer"],
                    "raisedBy": string(), "raisedAt": string(format: "date-time"), "answeredBy": string(nullable: true), "updatedAt": string(format: "date-time"),
                    "editCheck": string("The edit check that raised it", nullable: true),
                    "messages": ["type": ["array", "null"], "items": object(
                        ["action": string(), "status": string(values: QueryStatus.allCases.map(\.rawValue)), "text": string(), "actor": string(), "at": string(format: "date-time")],
                        required: ["action", "status", "text", "actor", "at"])],
                ], required: ["id", "participantId", "screeningNumber", "site", "kind", "status", "target", "text", "assignee", "overdue", "ageDays", "raisedBy", "raisedAt", "updatedAt"]),
            "QueryPage": object(["items": list("Query"), "next": string("The cursor of the next page; absent on the last", nullable: true)], required: ["items"]),
            "NewLock": object(
                [
                    "kind": string(values: LockKind.allCases.map(\.rawValue)), "level": string(values: LockLevel.allCases.map(\.rawValue)),
                    "site": string("A site code, for a site lock", nullable: true), "participantId": string(format: "uuid"),
                    "visit": string(nullable: true), "form": string(nullable: true), "reason": string(),
                ], required: ["kind", "level", "reason"]),
            "Lock": object(
                [
                    "id": string(format: "uuid"), "kind": string(values: LockKind.allCases.map(\.rawValue)), "level": string(values: LockLevel.allCases.map(\.rawValue)),
                    "siteId": string(format: "uuid", nullable: true), "participantId": string(format: "uuid", nullable: true), "visit": string(nullable: true),
                    "form": string(nullable: true), "reason": string(), "lockedBy": string(), "lockedAt": string(format: "date-time"),
                    "datasetSha256": string("For a study lock: the SHA-256 of the locked dataset", nullable: true),
                ], required: ["id", "kind", "level", "reason", "lockedBy", "lockedAt"]),
            "LockList": list("Lock"),
            "LabCorrection": object(
                ["value": ["type": "number"], "unit": string(), "collectedAt": string("yyyy-MM-ddTHH:mm, UTC unless an offset is given"), "reason": string("Why the value is corrected")],
                required: ["value", "unit", "collectedAt", "reason"]),
            "VerifyValue": object(["visit": string(), "item": string("form.field, or lab.TEST")], required: ["visit", "item"]),
            "VerificationItem": object(
                [
                    "visit": string(), "item": string(), "value": string(), "required": ["type": "boolean"], "state": string(values: VerificationState.allCases.map(\.rawValue)),
                    "verifiedValue": string(nullable: true), "verifiedBy": string(nullable: true), "verifiedAt": string(format: "date-time", nullable: true),
                ], required: ["visit", "item", "value", "required", "state"]),
            "VerificationItemList": list("VerificationItem"),
            "VerificationSummaryList": ["type": "array", "items": object(
                ["site": string(), "required": ["type": "integer"], "verified": ["type": "integer"], "changed": ["type": "integer"], "remaining": ["type": "integer"]],
                required: ["site", "required", "verified", "changed", "remaining"])],
            "Sign": object(
                [
                    "meaning": string(values: SignatureMeaning.allCases.map(\.rawValue)), "username": string("Your own user ID"), "password": string(),
                    "visit": string(nullable: true), "form": string(nullable: true),
                ], required: ["password"]),
            "Signature": object(
                [
                    "id": string(format: "uuid"), "covers": string(), "visit": string(nullable: true), "form": string(nullable: true),
                    "meaning": string(values: SignatureMeaning.allCases.map(\.rawValue)), "statement": string(), "signer": string(),
                    "signedAt": string(format: "date-time"), "signedAtSite": string("yyyy-MM-dd HH:mm and the site's time zone"),
                    "contentSha256": string(), "auditSequence": ["type": "integer"], "chainHead": string(), "valid": ["type": "boolean"],
                    "invalidatedAt": string(format: "date-time", nullable: true), "invalidatedBy": string(nullable: true),
                    "changed": ["type": "array", "items": ["type": "string"]],
                ], required: ["id", "covers", "meaning", "statement", "signer", "signedAt", "signedAtSite", "contentSha256", "auditSequence", "chainHead", "valid", "changed"]),
            "SignatureList": list("Signature"),
            "Verify": object(
                ["intact": ["type": "boolean"], "checked": ["type": "integer"], "brokenSequence": ["type": ["integer", "null"]], "problem": string(nullable: true)],
                required: ["intact", "checked"]),
        ]
    }

    static var document: [String: Any] {
        var paths: [String: [String: Any]] = [:]
        for op in operations {
            var operation: [String: Any] = ["summary": op.summary, "operationId": "\(op.method)\(op.path.replacingOccurrences(of: "/", with: "_"))"]
            var parameters: [[String: Any]] = []
            if op.path.contains("{id}") { parameters.append(["name": "id", "in": "path", "required": true, "schema": ["type": "string", "format": "uuid"]]) }
            for name in ["visit", "form", "code", "test", "key"] where op.path.contains("{\(name)}") {
                parameters.append(["name": name, "in": "path", "required": true, "schema": ["type": "string"]])
            }
            if op.path.contains("{version}") { parameters.append(["name": "version", "in": "path", "required": true, "schema": ["type": "integer"]]) }
            if op.path == "/api/v1/participants" && op.method == "get" {
                parameters.append(["name": "limit", "in": "query", "required": false, "schema": ["type": "integer", "minimum": 1, "maximum": 500]])
                parameters.append(["name": "after", "in": "query", "required": false, "schema": ["type": "string"]])
            }
            if op.path == "/api/v1/queries" && op.method == "get" {
                parameters += [
                    ["name": "status", "in": "query", "required": false, "schema": string(values: QueryStatus.allCases.map(\.rawValue))],
                    ["name": "site", "in": "query", "required": false, "schema": ["type": "string"]],
                    ["name": "participant", "in": "query", "required": false, "schema": ["type": "string", "format": "uuid"]],
                    ["name": "assignee", "in": "query", "required": false, "schema": string(values: Role.allCases.map(\.rawValue))],
                    ["name": "overdue", "in": "query", "required": false, "schema": string(values: ["true", "false"])],
                    ["name": "limit", "in": "query", "required": false, "schema": ["type": "integer", "minimum": 1, "maximum": 500]],
                    ["name": "after", "in": "query", "required": false, "schema": ["type": "string"]],
                ]
            }
            if op.path.hasPrefix("/api/v1/exports/") {
                parameters.append(["name": "blinded", "in": "query", "required": false, "schema": string(values: ["true", "false"])])
            }
            if op.path.hasSuffix("/diff") {
                for name in ["from", "to"] { parameters.append(["name": name, "in": "query", "required": true, "schema": ["type": "integer"]]) }
            }
            if !parameters.isEmpty { operation["parameters"] = parameters }
            if let body = op.body {
                operation["requestBody"] = ["required": true, "content": ["application/json": ["schema": ["$ref": "#/components/schemas/\(body)"]]]]
            }
            var responses: [String: Any] = [:]
            if let schema = op.success.schema {
                responses[op.success.code] = ["description": "Success", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/\(schema)"]]]]
            } else {
                responses[op.success.code] = ["description": "Done"]
            }
            for code in op.errors {
                responses[code] = ["description": "Refused", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
            }
            operation["responses"] = responses
            paths[op.path, default: [:]][op.method] = operation
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "Casebook API", "version": "1", "description": "Clinical-trial data capture. Authenticate with `Authorization: Bearer TOKEN`."],
            "servers": [["url": "/"]],
            "security": [["bearer": [String]()]],
            "paths": paths,
            "components": ["schemas": schemas, "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]]],
        ]
    }

    static func serve(req: Request) throws -> Response {
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return Response(status: .ok, headers: ["Content-Type": "application/json"], body: .init(data: data))
    }
}
