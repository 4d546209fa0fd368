#[test]
fn schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let current = plugboard::graphql::sdl();
    assert!(
        committed == current,
        "schema.graphql is out of date with the code; regenerate it with\n\n    cargo run -- print-schema > schema.graphql\n"
    );
}
