import FluentKit
import Foundation

public final class SiteModel: Model, @unchecked Sendable {
    public static let schema = "sites"
    @ID(key: .id) public var id: UUID?
    @Field(key: "code") public var code: String
    @Field(key: "name") public var name: String
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
    public init(id: UUID? = nil, code: String, name: String, createdAt: Date) {
        self.id = id
        self.code = code
        self.name = name
        self.createdAt = createdAt
    }
}

public final class UserModel: Model, @unchecked Sendable {
    public static let schema = "users"
    @ID(key: .id) public var id: UUID?
    @Field(key: "username") public var username: String
    @Field(key: "password_hash") public var passwordHash: String
    @Field(key: "role") public var role: String
    @Field(key: "is_active") public var isActive: Bool
    @Field(key: "failed_logins") public var failedLogins: Int
    @OptionalField(key: "locked_until") public var lockedUntil: Date?
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
}

public final class MembershipModel: Model, @unchecked Sendable {
    public static let schema = "site_memberships"
    @ID(key: .id) public var id: UUID?
    @Field(key: "user_id") public var userID: UUID
    @Field(key: "site_id") public var siteID: UUID

    public init() {}
    public init(userID: UUID, siteID: UUID) {
        self.userID = userID
        self.siteID = siteID
    }
}

public final class SessionModel: Model, @unchecked Sendable {
    public static let schema = "sessions"
    @ID(key: .id) public var id: UUID?
    @Field(key: "token_hash") public var tokenHash: String
    @Field(key: "user_id") public var userID: UUID
    @Field(key: "created_at") public var createdAt: Date
    @Field(key: "expires_at") public var expiresAt: Date

    public init() {}
}

public final class APITokenModel: Model, @unchecked Sendable {
    public static let schema = "api_tokens"
    @ID(key: .id) public var id: UUID?
    @Field(key: "user_id") public var userID: UUID
    @Field(key: "name") public var name: String
    @Field(key: "token_hash") public var tokenHash: String
    @Field(key: "prefix") public var prefix: String
    @Field(key: "created_at") public var createdAt: Date
    @OptionalField(key: "revoked_at") public var revokedAt: Date?
    @OptionalField(key: "last_used_at") public var lastUsedAt: Date?

    public init() {}
}

public final class ParticipantModel: Model, @unchecked Sendable {
    public static let schema = "participants"
    @ID(key: .id) public var id: UUID?
    @Field(key: "site_id") public var siteID: UUID
    @Field(key: "screening_number") public var screeningNumber: String
    @Field(key: "status") public var status: String
    @Field(key: "created_at") public var createdAt: Date
    @Field(key: "updated_at") public var updatedAt: Date
    @OptionalField(key: "deleted_at") public var deletedAt: Date?

    public init() {}
}

public final class AuditEventModel: Model, @unchecked Sendable {
    public static let schema = "audit_events"
    @ID(custom: "sequence", generatedBy: .user) public var id: Int64?
    @Field(key: "occurred_at") public var occurredAt: String
    @Field(key: "actor") public var actor: String
    @Field(key: "action") public var action: String
    @Field(key: "entity") public var entity: String
    @Field(key: "entity_id") public var entityID: String
    @OptionalField(key: "site_id") public var siteID: String?
    @OptionalField(key: "reason") public var reason: String?
    @Field(key: "changes") public var changes: String
    @Field(key: "previous_hash") public var previousHash: String
    @Field(key: "hash") public var hash: String

    public init() {}
}

public final class StudyVersionModel: Model, @unchecked Sendable {
    public static let schema = "study_versions"
    @ID(key: .id) public var id: UUID?
    @Field(key: "study_code") public var studyCode: String
    @Field(key: "version") public var version: Int
    @Field(key: "definition") public var definition: String
    @OptionalField(key: "definition_hash") public var definitionHash: String?
    @Field(key: "published_at") public var publishedAt: Date
    @Field(key: "published_by") public var publishedBy: String
    @OptionalField(key: "reason") public var reason: String?

    public init() {}
}

public final class FormRecordModel: Model, @unchecked Sendable {
    public static let schema = "form_records"
    @ID(key: .id) public var id: UUID?
    @Field(key: "participant_id") public var participantID: UUID
    @Field(key: "site_id") public var siteID: UUID
    @Field(key: "visit_code") public var visitCode: String
    @Field(key: "form_code") public var formCode: String
    @Field(key: "study_version") public var studyVersion: Int
    @Field(key: "data") public var data: String
    @Field(key: "created_at") public var createdAt: Date
    @Field(key: "updated_at") public var updatedAt: Date

    public init() {}
}

public final class ConsentModel: Model, @unchecked Sendable {
    public static let schema = "consents"
    @ID(key: .id) public var id: UUID?
    @Field(key: "participant_id") public var participantID: UUID
    @Field(key: "form_version") public var formVersion: String
    @Field(key: "signed_at") public var signedAt: Date
    @Field(key: "taken_by") public var takenBy: String
    @OptionalField(key: "withdrawn_at") public var withdrawnAt: Date?
    @OptionalField(key: "withdrawal_scope") public var withdrawalScope: String?
    @Field(key: "created_at") public var createdAt: Date
    public init() {}
}

public final class EligibilityReviewModel: Model, @unchecked Sendable {
    public static let schema = "eligibility_reviews"
    @ID(key: .id) public var id: UUID?
    @Field(key: "participant_id") public var participantID: UUID
    @Field(key: "outcome") public var outcome: String
    @Field(key: "failed_criteria") public var failedCriteria: String
    @Field(key: "assessment") public var assessment: String
    @Field(key: "study_version") public var studyVersion: Int
    @Field(key: "decided_by") public var decidedBy: String
    @Field(key: "decided_at") public var decidedAt: Date
    public init() {}
}

public final class RandomizationListModel: Model, @unchecked Sendable {
    public static let schema = "randomization_lists"
    @ID(key: .id) public var id: UUID?
    @Field(key: "study_code") public var studyCode: String
    @Field(key: "study_version") public var studyVersion: Int
    @Field(key: "method") public var method: String
    @Field(key: "seed") public var seed: String
    @Field(key: "generated_by") public var generatedBy: String
    @Field(key: "generated_at") public var generatedAt: Date
    public init() {}
}

public final class RandomizationSlotModel: Model, @unchecked Sendable {
    public static let schema = "randomization_slots"
    @ID(key: .id) public var id: UUID?
    @Field(key: "list_id") public var listID: UUID
    @Field(key: "stratum") public var stratum: String
    @Field(key: "position") public var position: Int
    @Field(key: "block") public var block: Int
    @Field(key: "block_size") public var blockSize: Int
    @Field(key: "arm") public var arm: String
    @OptionalField(key: "participant_id") public var participantID: UUID?
    @OptionalField(key: "allocated_at") public var allocatedAt: Date?
    @OptionalField(key: "allocated_by") public var allocatedBy: String?
    public init() {}
}

public final class InfusionModel: Model, @unchecked Sendable {
    public static let schema = "infusions"
    @ID(key: .id) public var id: UUID?
    @Field(key: "participant_id") public var participantID: UUID
    @Field(key: "product_lot") public var productLot: String
    @Field(key: "particles") public var particles: Double
    @Field(key: "volume_ml") public var volumeML: Double
    @Field(key: "started_at") public var startedAt: Date
    @Field(key: "stopped_at") public var stoppedAt: Date
    @Field(key: "rate_ml_per_hour") public var rateMLPerHour: Double
    @Field(key: "interruptions") public var interruptions: String
    @Field(key: "recorded_by") public var recordedBy: String
    @Field(key: "created_at") public var createdAt: Date
    public init() {}
}

public final class CTCAETermModel: Model, @unchecked Sendable {
    public static let schema = "ctcae_terms"
    @ID(key: .id) public var id: UUID?
    @Field(key: "version") public var version: String
    @Field(key: "meddra") public var meddra: String
    @Field(key: "soc") public var soc: String
    @Field(key: "term") public var term: String
    @Field(key: "grades") public var grades: String
    @Field(key: "definition") public var definition: String
    public init() {}
}

public final class LabResultModel: Model, @unchecked Sendable {
    public static let schema = "lab_results"
    @ID(key: .id) public var id: UUID?
    @Field(key: "participant_id") public var participantID: UUID
    @Field(key: "site_id") public var siteID: UUID
    @Field(key: "visit_code") public var visitCode: String
    @Field(key: "test_code") public var testCode: String
    @Field(key: "collected_at") public var collectedAt: Date
    @Field(key: "value") public var value: Double
    @Field(key: "unit") public var unit: String
    @Field(key: "entered_value") public var enteredValue: Double
    @Field(key: "entered_unit") public var enteredUnit: String
    @OptionalField(key: "uln") public var uln: Double?
    @OptionalField(key: "lln") public var lln: Double?
    @OptionalField(key: "baseline") public var baseline: Double?
    @OptionalField(key: "grade_v4") public var gradeV4: Int?
    @OptionalField(key: "grade_v5") public var gradeV5: Int?
    @OptionalField(key: "basis_v4") public var basisV4: String?
    @OptionalField(key: "basis_v5") public var basisV5: String?
    @OptionalField(key: "baseline_grade") public var baselineGrade: Int?
    @Field(key: "treatment_emergent") public var treatmentEmergent: Bool
    @Field(key: "created_by") public var createdBy: String
    @Field(key: "created_at") public var createdAt: Date
    public init() {}
}

public final class AdverseEventModel: Model, @unchecked Sendable {
    public static let schema = "adverse_events"
    @ID(key: .id) public var id: UUID?
    @Field(key: "participant_id") public var participantID: UUID
    @Field(key: "site_id") public var siteID: UUID
    @Field(key: "ctcae_version") public var ctcaeVersion: String
    @Field(key: "meddra") public var meddra: String
    @Field(key: "term") public var term: String
    @Field(key: "grade") public var grade: Int
    @Field(key: "onset_at") public var onsetAt: Date
    @OptionalField(key: "resolved_at") public var resolvedAt: Date?
    @Field(key: "serious") public var serious: Bool
    @Field(key: "seriousness") public var seriousness: String
    @Field(key: "attribution") public var attribution: String
    @Field(key: "expected") public var expected: Bool
    @Field(key: "action_taken") public var actionTaken: String
    @Field(key: "outcome") public var outcome: String
    @OptionalField(key: "aware_at") public var awareAt: Date?
    @OptionalField(key: "reported_at") public var reportedAt: Date?
    @Field(key: "created_by") public var createdBy: String
    @Field(key: "created_at") public var createdAt: Date
    public init() {}
}
