import Foundation

/// Text placed in HTML: the reports, the grid's results page and the walk-forward's windows.
package enum HTML {
    /// JSON to place inside a `<script>` element: `</` would end the element, and JSON reads `<\/` as the same text.
    package static func scriptJSON(_ json: String) -> String { json.replacingOccurrences(of: "</", with: "<\\/") }

    /// `&`, `<`, `>` and `"` as entities.
    package static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
