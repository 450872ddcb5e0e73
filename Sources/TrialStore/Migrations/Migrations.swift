import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// Every migration, in order. A shipped migration never changes: add a new one.
public enum StoreMigrations {
    public static var all: [any AsyncMigration] {
        [M001CreateAccounts(), M002CreateAuditTrail(), M003CreateParticipants(), M004CreateStudies(), M005CreateScreeningToInfusion(), M006CreateSafety(), M007AddRevisions(), M008AddLookupIndexes(), M009AddListIndexes(), M010CreateDoses(), M011CreateStageRandomizations(), M012CreateUnblindings(), M013AddEnrolmentVersion(), M014CreateProtocolDeviations(), M015CreateDataManagement(), M016CreateSignatures(), M017CreateVerifications(), M018AddDeviationReviews(), M019CreateFollowUps(), M020CreateMonitoringAlerts()]
    }
}

struct M001CreateAccounts: AsyncMigration {
    var name: String { "001-create-accounts" }

    func prepare(on database: any Database) async throws {
        try await database.schema("sites")
            .id()
            .field("code", .string, .required)
            .field("name", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "code")
            .create()
        try await database.schema("users")
            .id()
            .field("username", .string, .required)
            .field("password_hash", .string, .required)
            .field("role", .string, .required)
            .field("is_active", .bool, .required)
            .field("failed_logins", .int, .required)
            .field("locked_until", .datetime)
            .field("created_at", .datetime, .required)
            .unique(on: "username")
            .create()
        try await database.schema("site_memberships")
            .id()
            .field("user_id", .uuid, .required, .references("users", "id", onDelete: .cascade))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .unique(on: "user_id", "site_id")
            .create()
        try await database.schema("sessions")
            .id()
            .field("token_hash", .string, .required)
            .field("user_id", .uuid, .required, .references("users", "id", onDelete: .cascade))
            .field("created_at", .datetime, .required)
            .field("expires_at", .datetime, .required)
            .unique(on: "token_hash")
            .create()
        try await database.schema("api_tokens")
            .id()
            .field("user_id", .uuid, .required, .references("users", "id", onDelete: .cascade))
            .field("name", .string, .required)
            .field("token_hash", .string, .required)
            .field("prefix", .string, .required)
            .field("created_at", .datetime, .required)
            .field("revoked_at", .datetime)
            .field("last_used_at", .datetime)
            .unique(on: "token_hash")
            .create()
    }

    func revert(on database: any Database) async throws {
        for table in ["api_tokens", "sessions", "site_memberships", "users", "sites"] {
            try await database.schema(table).delete()
        }
    }
}

struct M002CreateAuditTrail: AsyncMigration {
    var name: String { "002-create-audit-trail" }

    func prepare(on database: any Database) async throws {
        try await database.schema("audit_events")
            .field("sequence", .int64, .identifier(auto: false))
            .field("occurred_at", .string, .required)
            .field("actor", .string, .required)
            .field("action", .string, .required)
            .field("entity", .string, .required)
            .field("entity_id", .string, .required)
            .field("site_id", .string)
            .field("reason", .string)
            .field("changes", .string, .required)
            .field("previous_hash", .string, .required)
            .field("hash", .string, .required)
            .create()
        // One row holding the chain's head; updating it first serialises appends on both databases.
        try await database.schema("audit_head")
            .field("id", .int, .identifier(auto: false))
            .field("sequence", .int64, .required)
            .field("hash", .string, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.insert(into: "audit_head").columns("id", "sequence", "hash")
            .values(SQLBind(1), SQLBind(Int64(0)), SQLBind(AuditChain.genesis)).run()
        try await sql.create(index: "audit_events_entity").on("audit_events").column("entity").column("entity_id").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("audit_head").delete()
        try await database.schema("audit_events").delete()
    }
}

struct M003CreateParticipants: AsyncMigration {
    var name: String { "003-create-participants" }

    func prepare(on database: any Database) async throws {
        try await database.schema("participants")
            .id()
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("screening_number", .string, .required)
            .field("status", .string, .required)
            .field("created_at", .datetime, .required)
            .field("updated_at", .datetime, .required)
            .field("deleted_at", .datetime)
            .unique(on: "site_id", "screening_number")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("participants").delete()
    }
}

struct M004CreateStudies: AsyncMigration {
    var name: String { "004-create-studies" }

    func prepare(on database: any Database) async throws {
        try await database.schema("study_versions")
            .id()
            .field("study_code", .string, .required)
            .field("version", .int, .required)
            .field("definition", .custom("TEXT"), .required)
            .field("published_at", .datetime, .required)
            .field("published_by", .string, .required)
            .field("reason", .string)
            .unique(on: "study_code", "version")
            .create()
        try await database.schema("form_records")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("visit_code", .string, .required)
            .field("form_code", .string, .required)
            .field("study_version", .int, .required)
            .field("data", .custom("TEXT"), .required)
            .field("created_at", .datetime, .required)
            .field("updated_at", .datetime, .required)
            .unique(on: "participant_id", "visit_code", "form_code")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("form_records").delete()
        try await database.schema("study_versions").delete()
    }
}

struct M005CreateScreeningToInfusion: AsyncMigration {
    var name: String { "005-create-screening-to-infusion" }

    func prepare(on database: any Database) async throws {
        try await database.schema("consents")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("form_version", .string, .required)
            .field("signed_at", .datetime, .required)
            .field("taken_by", .string, .required)
            .field("withdrawn_at", .datetime)
            .field("withdrawal_scope", .string)
            .field("created_at", .datetime, .required)
            .create()
        try await database.schema("eligibility_reviews")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("outcome", .string, .required)
            .field("failed_criteria", .string, .required)
            .field("assessment", .custom("TEXT"), .required)
            .field("study_version", .int, .required)
            .field("decided_by", .string, .required)
            .field("decided_at", .datetime, .required)
            .create()
        try await database.schema("randomization_lists")
            .id()
            .field("study_code", .string, .required)
            .field("study_version", .int, .required)
            .field("method", .string, .required)
            .field("seed", .string, .required)
            .field("generated_by", .string, .required)
            .field("generated_at", .datetime, .required)
            .unique(on: "study_code")
            .create()
        try await database.schema("randomization_slots")
            .id()
            .field("list_id", .uuid, .required, .references("randomization_lists", "id"))
            .field("stratum", .string, .required)
            .field("position", .int, .required)
            .field("block", .int, .required)
            .field("block_size", .int, .required)
            .field("arm", .string, .required)
            .field("participant_id", .uuid, .references("participants", "id"))
            .field("allocated_at", .datetime)
            .field("allocated_by", .string)
            .unique(on: "list_id", "stratum", "position")
            .unique(on: "participant_id")
            .create()
        try await database.schema("infusions")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("product_lot", .string, .required)
            .field("particles", .double, .required)
            .field("volume_ml", .double, .required)
            .field("started_at", .datetime, .required)
            .field("stopped_at", .datetime, .required)
            .field("rate_ml_per_hour", .double, .required)
            .field("interruptions", .custom("TEXT"), .required)
            .field("recorded_by", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "participant_id")
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "randomization_slots_free").on("randomization_slots").column("stratum").column("position").run()
    }

    func revert(on database: any Database) async throws {
        for table in ["infusions", "randomization_slots", "randomization_lists", "eligibility_reviews", "consents"] {
            try await database.schema(table).delete()
        }
    }
}

struct M006CreateSafety: AsyncMigration {
    var name: String { "006-create-safety" }

    func prepare(on database: any Database) async throws {
        try await database.schema("ctcae_terms")
            .id()
            .field("version", .string, .required)
            .field("meddra", .string, .required)
            .field("soc", .string, .required)
            .field("term", .string, .required)
            .field("grades", .custom("TEXT"), .required)
            .field("definition", .custom("TEXT"), .required)
            .unique(on: "version", "meddra")
            .create()
        try await database.schema("lab_results")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("visit_code", .string, .required)
            .field("test_code", .string, .required)
            .field("collected_at", .datetime, .required)
            .field("value", .double, .required)
            .field("unit", .string, .required)
            .field("entered_value", .double, .required)
            .field("entered_unit", .string, .required)
            .field("uln", .double)
            .field("lln", .double)
            .field("baseline", .double)
            .field("grade_v4", .int)
            .field("grade_v5", .int)
            .field("basis_v4", .custom("TEXT"))
            .field("basis_v5", .custom("TEXT"))
            .field("baseline_grade", .int)
            .field("treatment_emergent", .bool, .required)
            .field("created_by", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "participant_id", "visit_code", "test_code")
            .create()
        try await database.schema("adverse_events")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("ctcae_version", .string, .required)
            .field("meddra", .string, .required)
            .field("term", .string, .required)
            .field("grade", .int, .required)
            .field("onset_at", .datetime, .required)
            .field("resolved_at", .datetime)
            .field("serious", .bool, .required)
            .field("seriousness", .string, .required)
            .field("attribution", .string, .required)
            .field("expected", .bool, .required)
            .field("action_taken", .string, .required)
            .field("outcome", .string, .required)
            .field("aware_at", .datetime)
            .field("reported_at", .datetime)
            .field("created_by", .string, .required)
            .field("created_at", .datetime, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        for table in ["adverse_events", "lab_results", "ctcae_terms"] { try await database.schema(table).delete() }
    }
}

/// What lets readers keep decoded data between requests and still see every change: a participant's file revision,
/// raised by every write to the file, and each study version's content hash.
struct M007AddRevisions: AsyncMigration {
    var name: String { "007-add-revisions" }

    func prepare(on database: any Database) async throws {
        try await database.schema("participants").field("revision", .int64, .required, .sql(.default(0))).update()
        try await database.schema("study_versions").field("definition_hash", .string).update()
        let sql = database as! any SQLDatabase
        for row in try await sql.raw("SELECT id, definition FROM study_versions").all() {
            let id = try row.decode(column: "id", as: UUID.self)
            let hash = AuditChain.sha256Hex(try row.decode(column: "definition", as: String.self))
            try await sql.raw("UPDATE study_versions SET definition_hash = \(bind: hash) WHERE id = \(bind: id)").run()
        }
    }

    func revert(on database: any Database) async throws {
        try await database.schema("study_versions").deleteField("definition_hash").update()
        try await database.schema("participants").deleteField("revision").update()
    }
}

/// Indexes for what every participant-file read and every allocation asks: a participant's consents and eligibility
/// decisions, and a stratum's first free slot. Without them each is a scan of the whole table, so entry slows as
/// the trial grows.
struct M008AddLookupIndexes: AsyncMigration {
    var name: String { "008-add-lookup-indexes" }

    func prepare(on database: any Database) async throws {
        let sql = database as! any SQLDatabase
        try await sql.create(index: "consents_participant").on("consents").column("participant_id").run()
        try await sql.create(index: "eligibility_reviews_participant").on("eligibility_reviews").column("participant_id").column("decided_at").run()
        try await sql.create(index: "adverse_events_participant").on("adverse_events").column("participant_id").run()
        // Partial, so finding the next free slot skips the allocated ones instead of stepping over each of them.
        try await sql.raw("CREATE INDEX randomization_slots_unallocated ON randomization_slots (list_id, stratum, position) WHERE participant_id IS NULL").run()
    }

    func revert(on database: any Database) async throws {
        let sql = database as! any SQLDatabase
        for index in ["randomization_slots_unallocated", "adverse_events_participant", "eligibility_reviews_participant", "consents_participant"] {
            try await sql.raw("DROP INDEX \(ident: index)").run()
        }
    }
}

/// Participant lists are read a page at a time in screening-number order, across a user's sites; analyses read one
/// lab at one visit, or one form, for the whole cohort.
struct M009AddListIndexes: AsyncMigration {
    var name: String { "009-add-list-indexes" }

    func prepare(on database: any Database) async throws {
        let sql = database as! any SQLDatabase
        try await sql.create(index: "participants_number").on("participants").column("screening_number").column("id").run()
        try await sql.create(index: "lab_results_test_visit").on("lab_results").column("test_code").column("visit_code").run()
        try await sql.create(index: "form_records_form").on("form_records").column("form_code").run()
    }

    func revert(on database: any Database) async throws {
        let sql = database as! any SQLDatabase
        for index in ["form_records_form", "lab_results_test_visit", "participants_number"] { try await sql.raw("DROP INDEX \(ident: index)").run() }
    }
}

/// Doses as the study's arms plan them, each given (with lot, expiry and the amount worked out) or skipped with a reason.
/// Infusions recorded before are copied as the first dose of their arm's plan in the definition in force.
struct M010CreateDoses: AsyncMigration {
    var name: String { "010-create-doses" }

    func prepare(on database: any Database) async throws {
        try await database.schema("doses")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("dose_code", .string, .required)
            .field("given", .bool, .required)
            .field("started_at", .datetime)
            .field("ended_at", .datetime)
            .field("lot", .string)
            .field("expiry", .string)
            .field("weight_kg", .double)
            .field("amount", .double)
            .field("unit", .string)
            .field("deviation_reason", .string)
            .field("deviation", .bool, .required)
            .field("skip_reason", .string)
            .field("recorded_by", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "participant_id", "dose_code")
            .create()
        let sql = database as! any SQLDatabase
        try await sql.create(index: "doses_site").on("doses").column("site_id").run()
        guard let definition = try await sql.raw("SELECT definition FROM study_versions ORDER BY version DESC LIMIT 1").first()?
            .decode(column: "definition", as: String.self),
            let study = try? JSONDecoder().decode(StudyDefinition.self, from: Data(definition.utf8))
        else { return }
        for row in try await sql.raw("""
            SELECT i.participant_id, p.site_id, sl.arm, i.product_lot, i.particles, i.started_at, i.stopped_at, i.recorded_by, i.created_at
            FROM infusions i JOIN participants p ON p.id = i.participant_id JOIN randomization_slots sl ON sl.participant_id = i.participant_id
            """).all()
        {
            guard let first = DoseRules.plan(study: study, arm: try row.decode(column: "arm", as: String.self)).first else { continue }
            try await sql.raw("""
                INSERT INTO doses (id, participant_id, site_id, dose_code, given, started_at, ended_at, lot, amount, unit, deviation, recorded_by, created_at)
                VALUES (\(bind: UUID.timeOrdered()), \(bind: try row.decode(column: "participant_id", as: UUID.self)), \(bind: try row.decode(column: "site_id", as: UUID.self)),
                  \(bind: first.code), \(bind: true), \(bind: try row.decode(column: "started_at", as: Date.self)), \(bind: try row.decode(column: "stopped_at", as: Date.self)),
                  \(bind: try row.decode(column: "product_lot", as: String.self)), \(bind: try row.decode(column: "particles", as: Double.self)), \(bind: first.unit),
                  \(bind: false), \(bind: try row.decode(column: "recorded_by", as: String.self)), \(bind: try row.decode(column: "created_at", as: Date.self)))
                """).run()
        }
    }

    func revert(on database: any Database) async throws {
        try await database.schema("doses").delete()
    }
}

/// Randomizations after enrolment: one concealed list per stage, whose positions carry the option drawn and, once
/// allocated, the arm it led to.
struct M011CreateStageRandomizations: AsyncMigration {
    var name: String { "011-create-stage-randomizations" }

    func prepare(on database: any Database) async throws {
        try await database.schema("stage_lists")
            .id()
            .field("study_code", .string, .required)
            .field("randomization", .string, .required)
            .field("seed", .string, .required)
            .field("generated_by", .string, .required)
            .field("generated_at", .datetime, .required)
            .unique(on: "study_code", "randomization")
            .create()
        try await database.schema("stage_slots")
            .id()
            .field("list_id", .uuid, .required, .references("stage_lists", "id"))
            .field("stratum", .string, .required)
            .field("position", .int, .required)
            .field("block", .int, .required)
            .field("block_size", .int, .required)
            .field("option", .string, .required)
            .field("participant_id", .uuid, .references("participants", "id"))
            .field("arm_before", .string)
            .field("arm_after", .string)
            .field("allocated_at", .datetime)
            .field("allocated_by", .string)
            .unique(on: "list_id", "stratum", "position")
            .unique(on: "list_id", "participant_id")
            .create()
        let sql = database as! any SQLDatabase
        try await sql.create(index: "stage_slots_participant").on("stage_slots").column("participant_id").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("stage_slots").delete()
        try await database.schema("stage_lists").delete()
    }
}

/// Emergency unblindings: who asked to see one participant's arm, when and why.
struct M012CreateUnblindings: AsyncMigration {
    var name: String { "012-create-unblindings" }

    func prepare(on database: any Database) async throws {
        try await database.schema("unblindings")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("username", .string, .required)
            .field("reason", .custom("TEXT"), .required)
            .field("unblinded_at", .datetime, .required)
            .unique(on: "participant_id", "username")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("unblindings").delete()
    }
}

/// The study version each participant was enrolled under, so an amendment for new participants only leaves them theirs.
struct M013AddEnrolmentVersion: AsyncMigration {
    var name: String { "013-add-enrolment-version" }

    func prepare(on database: any Database) async throws {
        try await database.schema("participants").field("study_version", .int).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("participants").deleteField("study_version").update()
    }
}

/// Protocol deviations other than a dose out of its window (kept on the dose itself): data entered after allocation
/// that contradict the eligibility the allocation rested on.
struct M014CreateProtocolDeviations: AsyncMigration {
    var name: String { "014-create-protocol-deviations" }

    func prepare(on database: any Database) async throws {
        try await database.schema("protocol_deviations")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("kind", .string, .required)
            .field("detail", .custom("TEXT"), .required)
            .field("raised_by", .string, .required)
            .field("raised_at", .datetime, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("protocol_deviations").delete()
    }
}

/// Queries with their threads, and freezes and locks.
struct M015CreateDataManagement: AsyncMigration {
    var name: String { "015-create-data-management" }

    func prepare(on database: any Database) async throws {
        try await database.schema("queries")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("kind", .string, .required)
            .field("status", .string, .required)
            .field("visit_code", .string)
            .field("form_code", .string)
            .field("lab_test", .string)
            .field("field_code", .string)
            .field("text", .custom("TEXT"), .required)
            .field("assignee_role", .string, .required)
            .field("due_at", .datetime)
            .field("raised_by", .string, .required)
            .field("raised_at", .datetime, .required)
            .field("answered_by", .string)
            .field("updated_at", .datetime, .required)
            // The edit check that raised it, for a failed-check query.
            .field("check_code", .string)
            .create()
        try await database.schema("query_messages")
            .id()
            .field("query_id", .uuid, .required, .references("queries", "id"))
            .field("action", .string, .required)
            .field("status", .string, .required)
            .field("text", .custom("TEXT"), .required)
            .field("actor", .string, .required)
            .field("at", .datetime, .required)
            .create()
        try await database.schema("data_locks")
            .id()
            .field("kind", .string, .required)
            .field("level", .string, .required)
            .field("site_id", .uuid, .references("sites", "id"))
            .field("participant_id", .uuid, .references("participants", "id"))
            .field("visit_code", .string)
            .field("form_code", .string)
            .field("reason", .custom("TEXT"), .required)
            .field("locked_by", .string, .required)
            .field("locked_at", .datetime, .required)
            .field("dataset_hash", .string)
            .create()
        let sql = database as! any SQLDatabase
        try await sql.raw("CREATE INDEX queries_site_status ON queries (site_id, status, raised_at)").run()
        try await sql.raw("CREATE INDEX queries_participant ON queries (participant_id, status)").run()
        try await sql.raw("CREATE INDEX query_messages_query ON query_messages (query_id, at)").run()
    }

    func revert(on database: any Database) async throws {
        for table in ["query_messages", "queries", "data_locks"] { try await database.schema(table).delete() }
    }
}

/// Electronic signatures, with what they cover, and the bookkeeping of signing: consecutive wrong passwords per user,
/// and the sessions that have signed once (later signings there ask for the password alone).
struct M016CreateSignatures: AsyncMigration {
    var name: String { "016-create-signatures" }

    func prepare(on database: any Database) async throws {
        try await database.schema("signatures")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("visit_code", .string)
            .field("form_code", .string)
            .field("meaning", .string, .required)
            .field("statement", .custom("TEXT"), .required)
            .field("signer", .string, .required)
            .field("signed_at", .datetime, .required)
            .field("content_sha256", .string, .required)
            // The signed values themselves, so that an invalidation can say which changed.
            .field("content", .custom("TEXT"), .required)
            .field("audit_sequence", .int64, .required)
            .field("chain_head", .string, .required)
            .field("invalidated_at", .datetime)
            .field("invalidated_by", .string)
            .create()
        try await database.schema("signing_failures")
            .field("username", .string, .identifier(auto: false))
            .field("failures", .int, .required)
            .field("locked_until", .datetime)
            .create()
        try await database.schema("signing_sessions")
            .field("session_hash", .string, .identifier(auto: false))
            .field("username", .string, .required)
            .field("first_signed_at", .datetime, .required)
            .create()
        try await (database as! any SQLDatabase).raw("CREATE INDEX signatures_participant ON signatures (participant_id, invalidated_at)").run()
    }

    func revert(on database: any Database) async throws {
        for table in ["signatures", "signing_failures", "signing_sessions"] { try await database.schema(table).delete() }
    }
}

/// Source data verification: each value a monitor checked against source, with the value as it was then.
struct M017CreateVerifications: AsyncMigration {
    var name: String { "017-create-verifications" }

    func prepare(on database: any Database) async throws {
        try await database.schema("verifications")
            .id()
            .field("participant_id", .uuid, .required, .references("participants", "id"))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("visit_code", .string, .required)
            .field("item", .string, .required)
            .field("verified_value", .custom("TEXT"), .required)
            .field("verified_by", .string, .required)
            .field("verified_at", .datetime, .required)
            .create()
        try await (database as! any SQLDatabase).raw("CREATE INDEX verifications_participant ON verifications (participant_id, visit_code, item)").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("verifications").delete()
    }
}

/// A deviation's visit, and the review that classifies each deviation (a dose's too, kept on the dose itself).
struct M018AddDeviationReviews: AsyncMigration {
    var name: String { "018-add-deviation-reviews" }

    func prepare(on database: any Database) async throws {
        try await database.schema("protocol_deviations").field("visit_code", .string).update()
        try await database.schema("deviation_reviews")
            // `dose:ID` for a dose given out of its window, else the protocol_deviations id.
            .field("deviation_key", .string, .identifier(auto: false))
            .field("classification", .string, .required)
            .field("note", .custom("TEXT"))
            .field("reviewed_by", .string, .required)
            .field("reviewed_at", .datetime, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("deviation_reviews").delete()
        try await database.schema("protocol_deviations").deleteField("visit_code").update()
    }
}

/// Follow-up reports of serious adverse events, each with the time the next is due.
struct M019CreateFollowUps: AsyncMigration {
    var name: String { "019-create-follow-ups" }

    func prepare(on database: any Database) async throws {
        try await database.schema("ae_follow_ups")
            .id()
            .field("event_id", .uuid, .required, .references("adverse_events", "id"))
            .field("site_id", .uuid, .required, .references("sites", "id"))
            .field("submitted_at", .datetime, .required)
            .field("text", .custom("TEXT"), .required)
            .field("next_due_at", .datetime)
            .field("created_by", .string, .required)
            .field("created_at", .datetime, .required)
            .create()
        try await (database as! any SQLDatabase).raw("CREATE INDEX ae_follow_ups_event ON ae_follow_ups (event_id, submitted_at)").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("ae_follow_ups").delete()
    }
}

/// Stopping-rule alerts: one per rule and definition version, raised once.
struct M020CreateMonitoringAlerts: AsyncMigration {
    var name: String { "020-create-monitoring-alerts" }

    func prepare(on database: any Database) async throws {
        try await database.schema("monitoring_alerts")
            .id()
            .field("rule_code", .string, .required)
            .field("study_version", .int, .required)
            .field("evaluated", .int, .required)
            .field("events", .int, .required)
            .field("stop_if_at_least", .int, .required)
            .field("raised_at", .datetime, .required)
            .unique(on: "rule_code", "study_version")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("monitoring_alerts").delete()
    }
}
