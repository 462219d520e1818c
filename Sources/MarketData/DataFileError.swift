/// A problem with an input file, naming the file, the line (1-based, the header is line 1) and the reason.
public struct DataFileError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int?
    public var reason: String

    public init(file: String, line: Int? = nil, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String {
        if let line { return "\(file):\(line): \(reason)" }
        return "\(file): \(reason)"
    }
}
