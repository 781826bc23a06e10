// A return type that is not a response.
struct Report {
    lines: usize,
}

#[weft::debug_handler]
async fn report(body: String) -> Report {
    Report {
        lines: body.lines().count(),
    }
}

fn main() {
    let _ = report;
}
