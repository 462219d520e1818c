/// The control socket's protocol (docs/DESIGN.md, "Control socket"): one JSON object per line each way.
///
///     request  {"id":1,"cmd":"status","args":{}}
///     reply    {"id":1,"ok":true,"result":{...}}
///              {"id":1,"ok":false,"error":{"code":"unknown_command","message":"..."}}
///
/// Both the agent and `atctl` use these types; nothing here does I/O.

/// The commands the agent answers, by wire name.
public enum ControlCommand: String, Sendable, CaseIterable, Codable {
    case status, health, positions, orders, pnl, va, signals, alerts, version
    case activate, pause, resume, flatten, reload
    case killSwitchReset = "kill-switch-reset"

    /// Commands that change something: logged with the peer's uid and stored.
    public var isMutating: Bool {
        switch self {
        case .activate, .pause, .resume, .flatten, .reload, .killSwitchReset: true
        default: false
        }
    }
}

/// A request line.
public struct ControlRequest: Codable, Sendable, Hashable {
    public var id: Int?
    public var cmd: String
    public var args: [String: ControlArg]?

    public init(id: Int?, cmd: String, args: [String: ControlArg]? = nil) {
        self.id = id
        self.cmd = cmd
        self.args = args
    }
}

/// An argument value: a string, a number or a boolean.
public enum ControlArg: Codable, Sendable, Hashable {
    case string(String)
    case number(Double)
    case bool(Bool)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? c.decode(Double.self) {
            self = .number(n)
        } else {
            self = .string(try c.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .number(let n): try c.encode(n)
        case .bool(let b): try c.encode(b)
        }
    }

    /// A whole number, from a number or a numeric string.
    public var integer: Int? {
        switch self {
        case .number(let n): n == n.rounded() && abs(n) < 1e15 ? Int(n) : nil
        case .string(let s): Int(s)
        case .bool: nil
        }
    }
}

/// Why a request failed. `code` is stable for scripts; `message` is for people.
public struct ControlFailure: Codable, Sendable, Hashable, Error {
    public var code: String
    public var message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The request line is not JSON, or not a request object.
    public static let badRequest = "bad_request"
    /// The request line exceeds the size limit.
    public static let tooLarge = "request_too_large"
    public static let unknownCommand = "unknown_command"
    public static let badArguments = "bad_arguments"
    /// The agent refuses in its present state (the message says why and what to do).
    public static let refused = "refused"
    /// The action was tried and did not complete.
    public static let failed = "failed"
    /// The agent did not finish in time.
    public static let timeout = "timeout"
    /// The peer's uid/gid may not use this socket.
    public static let permissionDenied = "permission_denied"
}

/// A reply line, generic over the command's result.
public struct ControlReply<Result: Codable & Sendable>: Codable, Sendable {
    public var id: Int?
    public var ok: Bool
    public var result: Result?
    public var error: ControlFailure?

    public init(id: Int?, result: Result) {
        self.id = id
        ok = true
        self.result = result
        error = nil
    }

    public init(id: Int?, error: ControlFailure) {
        self.id = id
        ok = false
        result = nil
        self.error = error
    }
}

/// A reply whose result is not read (errors, or a check of `ok`).
public struct NoResult: Codable, Sendable, Hashable {
    public init() {}
}

/// Where the control socket of an environment lives, found the way systemd places it: the unit's
/// `RuntimeDirectory=auction-agent/<env>` gives `/run/auction-agent/<env>/control.sock`; without systemd the agent
/// uses `./run/<env>/control.sock` under its working directory.
public enum ControlSocketPath {
    public static func system(environment env: String) -> String { "/run/auction-agent/\(env)/control.sock" }
    public static func local(environment env: String) -> String { "run/\(env)/control.sock" }

    /// The agent's socket: `$RUNTIME_DIRECTORY/control.sock` under systemd, else the local path.
    public static func forAgent(environment env: String, processEnvironment: [String: String]) -> String {
        if let dir = processEnvironment["RUNTIME_DIRECTORY"], !dir.isEmpty {
            // systemd may list several directories separated by ':'; ours is the first.
            return "\(dir.split(separator: ":")[0])/control.sock"
        }
        return local(environment: env)
    }

    /// The client's guess: the system path when it exists, else the local one.
    public static func forClient(environment env: String, exists: (String) -> Bool) -> String {
        let system = system(environment: env)
        return exists(system) ? system : local(environment: env)
    }
}
