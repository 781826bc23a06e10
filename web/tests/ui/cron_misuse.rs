// What `#[weft::cron]` refuses, each where it is written.

#[weft::cron("0 */5 * * *")]
fn not_async() {}

#[weft::cron("0 */5 * * *")]
async fn takes_an_argument(times: u32) {}

#[weft::cron("every five minutes please")]
async fn not_an_expression() {}

#[weft::cron("@daily", zone = "Europe/Paris")]
async fn unknown_argument() {}

fn main() {}
