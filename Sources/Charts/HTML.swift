import Foundation

/// Text placed in HTML: the reports, the grid's results page and the walk-forward's windows.
package enum HTML {
    /// `&`, `<`, `>` and `"` as entities.
    package static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
