//! The checked-in `schema.graphql` must match the schema the code builds. Run with
//! `UPDATE_SCHEMA=1` to rewrite it after an intended change.

use std::path::PathBuf;

#[test]
fn checked_in_schema_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schema.graphql");
    let actual = nova_graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &actual).expect("write schema.graphql");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "schema.graphql is out of date; run `UPDATE_SCHEMA=1 cargo test -p nova-graphql --test schema_sdl` and commit it"
    );
}
