// What the attribute refuses: a plain `fn`, a method, a generic function.
struct Controller;

impl Controller {
    #[weft::debug_handler]
    async fn show(&self) -> String {
        String::new()
    }
}

#[weft::debug_handler]
fn plain() -> String {
    String::new()
}

#[weft::debug_handler]
async fn generic<T: Send + 'static>(body: String) -> String {
    body
}

fn main() {
    let _ = (Controller, plain, generic::<u8>);
}
