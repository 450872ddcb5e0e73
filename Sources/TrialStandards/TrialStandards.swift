import Foundation
import TrialDomain
