/// A command failed; the message names the file and what to do.
public struct CommandError: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) { self.description = description }
    public init(_ description: String) { self.description = description }
}
