//! GraphiQL is served from the binary: the page loads only this service's assets, under a
//! strict Content-Security-Policy. (The browser test in frontend-example/e2e runs it.)

use crate::helpers::{Backend, TestApp};

#[tokio::test]
async fn graphiql_loads_only_assets_the_service_carries() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let response = app.client.get(format!("{}/graphql", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    for directive in
        ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
    let page = response.text().await.unwrap();
    assert!(!page.contains("http://") && !page.contains("https://"), "nothing from elsewhere: {page}");
    assert!(page.contains("Authorization"), "the page says where the token goes");

    for (path, kind) in [
        ("/graphql/assets/graphiql.js", "text/javascript"),
        ("/graphql/assets/graphiql.css", "text/css"),
        ("/graphql/assets/LICENSES.txt", "text/plain"),
    ] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        assert!(response.bytes().await.unwrap().len() > 1000, "{path}");
    }
    let licenses =
        app.client.get(format!("{}/graphql/assets/LICENSES.txt", app.address)).send().await.unwrap();
    assert!(licenses.text().await.unwrap().contains("graphiql 4.1.2"));
}
