/// The admin page's files, compiled in from `AdminPage/`: code only, no data (the page asks
/// the endpoint for everything it shows).
enum AdminPage {
    static let files: [String: (body: [UInt8], type: String)] = [
        "/": (PackageResources.index_html, "text/html; charset=utf-8"),
        "/index.html": (PackageResources.index_html, "text/html; charset=utf-8"),
        "/admin.js": (PackageResources.admin_js, "text/javascript; charset=utf-8"),
        "/admin.css": (PackageResources.admin_css, "text/css; charset=utf-8"),
    ]
}
