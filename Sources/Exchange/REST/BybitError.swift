/// A failed Bybit call, with what an operator needs: the endpoint, and the HTTP status or retCode and message.
public struct BybitError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No reply (connection refused, timeout, reset).
        case transport(timedOut: Bool)
        /// HTTP status other than 200 with no Bybit envelope.
        case http(Int)
        /// Bybit answered with a non-zero retCode.
        case api(retCode: Int, retMsg: String)
        /// The reply lacks a field, or a field does not parse.
        case decoding
        /// HTTP 403: the IP is banned; no call is made before `until` (ms).
        case ipBanned(until: Int64)
        /// A signed call without API keys.
        case missingCredentials
    }

    public var kind: Kind
    /// `GET /v5/market/time`.
    public var endpoint: String
    public var message: String

    public init(_ kind: Kind, endpoint: String, message: String) {
        self.kind = kind
        self.endpoint = endpoint
        self.message = message
    }

    public var description: String {
        switch kind {
        case .api(let code, let msg): "\(endpoint): retCode \(code) (\(msg))\(message.isEmpty ? "" : ": \(message)")"
        case .http(let status): "\(endpoint): HTTP \(status)\(message.isEmpty ? "" : ": \(message)")"
        default: "\(endpoint): \(message)"
        }
    }

    /// The Bybit retCode, if any.
    public var retCode: Int? { if case .api(let c, _) = kind { c } else { nil } }
}

/// Bybit retCodes the client acts on (docs/BYBIT.md, "Errors and what the client does").
public enum BybitRetCode {
    public static let badParameter = 10001
    public static let timestampOutsideWindow = 10002
    public static let invalidKey = 10003
    public static let badSignature = 10004
    public static let permission = 10005
    public static let tooManyVisits = 10006
    public static let serverError = 10016
    public static let orderNotFound = 110001
    public static let insufficientBalance = 110007
    public static let reduceOnlyNotSatisfied = 110017
    public static let duplicateOrderLinkId = 110072
    /// Leverage not modified: nothing to do.
    public static let leverageNotModified = 110043
    /// Position mode not modified: nothing to do.
    public static let positionModeNotModified = 110025
    /// TP/SL not modified (the same stop set again): success.
    public static let tpslNotModified = 34040
}
