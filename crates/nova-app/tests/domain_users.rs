//! Domain rules of accounts, sessions and the social graph, exercised on a built app's services
//! without HTTP: normalisation and uniqueness, credential checks, refresh-token rotation and
//! family revocation (also under concurrent use), follow idempotency under concurrency, blocks
//! racing follows, keyset pages of followers, and profile patches.

use nova_app::testing::TestApp;
use nova_app::App;
use nova_core::{Code, Coded, Id, PageRequest, Viewer};
use nova_users::service::SignedIn;
use nova_users::{UserError, UserView};

/// A built app on a temporary data directory (kept alive as long as the harness).
struct Harness {
    app: App,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let app = App::build(&TestApp::test_settings(dir.path()))
            .await
            .expect("build app");
        Harness { app, _dir: dir }
    }

    fn services(&self) -> &nova_graphql::Services {
        self.app.services()
    }

    /// Registers `username` with `<username>@example.test` / `password-<username>`.
    async fn register(&self, username: &str) -> SignedIn {
        self.services()
            .users
            .register(
                username,
                &format!("{username}@example.test"),
                &format!("password-{username}"),
            )
            .await
            .expect("register")
    }

    async fn account(&self, username: &str) -> Viewer {
        Viewer {
            user_id: self.register(username).await.user_id,
        }
    }

    async fn user(&self, id: Id) -> UserView {
        self.services()
            .users
            .get_user(id)
            .await
            .expect("get user")
            .expect("user exists")
    }

    /// (followers, following) of an account.
    async fn counts(&self, id: Id) -> (i64, i64) {
        let user = self.user(id).await;
        (user.follower_count, user.following_count)
    }
}

#[tokio::test]
async fn registration_stores_the_normalised_username_and_the_lower_cased_email_domain() {
    let h = Harness::new().await;
    let signed_in = h
        .services()
        .users
        .register("Ｄａｖｅ_01", "  Dave.Smith@Example.TEST ", "password-dave")
        .await
        .expect("register");
    let user = h.user(signed_in.user_id).await;
    assert_eq!(user.user.username.as_str(), "dave_01");
    assert_eq!(user.user.email.as_str(), "Dave.Smith@example.test");
    assert_eq!(user.user.display_name, "");
    assert_eq!(user.user.bio, "");
    assert_eq!(user.user.avatar_url, None);
    assert_eq!(
        (user.follower_count, user.following_count, user.post_count),
        (0, 0, 0)
    );
    for spelling in ["dave_01", "DAVE_01", "Ｄａｖｅ_01"] {
        assert_eq!(
            h.services().users.find_by_username(spelling).await.ok(),
            Some(Some(signed_in.user_id)),
            "{spelling}"
        );
    }
    // Malformed usernames simply match nothing.
    assert_eq!(
        h.services().users.find_by_username("d@ve").await.ok(),
        Some(None)
    );
}

#[tokio::test]
async fn conflicting_registrations_are_username_or_email_taken_and_coded_conflict() {
    let h = Harness::new().await;
    h.register("erin").await;
    let users = &h.services().users;

    let taken = users
        .register("ERIN", "other@example.test", "password-x")
        .await
        .expect_err("username taken");
    assert!(matches!(taken, UserError::UsernameTaken), "{taken:?}");
    assert_eq!(taken.code(), Code::Conflict);

    let email = users
        .register("frank", "erin@EXAMPLE.test", "password-x")
        .await
        .expect_err("email taken");
    assert!(matches!(email, UserError::EmailTaken), "{email:?}");
    assert_eq!(email.code(), Code::Conflict);

    // Neither failure left a row behind.
    assert_eq!(users.find_by_username("frank").await.ok(), Some(None));
    let frank = users
        .register("frank", "frank@example.test", "password-frank")
        .await
        .expect("frank is free");
    assert_eq!(h.user(frank.user_id).await.user.username.as_str(), "frank");
}

#[tokio::test]
async fn invalid_registration_input_is_invalid_input_and_creates_nothing() {
    let h = Harness::new().await;
    let users = &h.services().users;
    for (username, email, password) in [
        ("\u{430}lice", "a@example.test", "password-x"),
        ("al\u{200b}ice", "a@example.test", "password-x"),
        ("al", "a@example.test", "password-x"),
        ("alice", "not-an-email", "password-x"),
        ("alice", "a@example.test", "short"),
    ] {
        let error = users
            .register(username, email, password)
            .await
            .expect_err("invalid input");
        assert!(
            matches!(error, UserError::InvalidInput(_)),
            "{username:?}: {error:?}"
        );
        assert_eq!(error.code(), Code::InvalidInput);
    }
    assert_eq!(users.find_by_username("alice").await.ok(), Some(None));
    // The email was never reserved.
    users
        .register("alice", "a@example.test", "password-x")
        .await
        .expect("register");
}

#[tokio::test]
async fn sign_in_accepts_username_or_email_and_refuses_everything_else_alike() {
    let h = Harness::new().await;
    let registered = h.register("gina").await;
    let users = &h.services().users;
    for login in ["gina", "GINA", "gina@example.test", "gina@EXAMPLE.TEST"] {
        let signed_in = users
            .sign_in(login, "password-gina")
            .await
            .unwrap_or_else(|e| panic!("{login}: {e:?}"));
        assert_eq!(signed_in.user_id, registered.user_id);
        // The access token stands for the account.
        let viewer = users
            .tokens()
            .verify_access_token(&signed_in.tokens.access_token)
            .expect("valid token");
        assert_eq!(viewer.user_id, registered.user_id);
        // A new session each time.
        assert_ne!(
            signed_in.tokens.refresh_token,
            registered.tokens.refresh_token
        );
    }
    for (login, password) in [
        ("gina", "password-gin"),
        ("nobody", "password-gina"),
        ("nobody@example.test", "password-gina"),
        ("", "password-gina"),
        ("gina", ""),
    ] {
        let error = users.sign_in(login, password).await.expect_err("refused");
        assert!(
            matches!(error, UserError::InvalidCredentials),
            "{login:?}: {error:?}"
        );
        assert_eq!(error.code(), Code::Unauthenticated);
    }
}

#[tokio::test]
async fn a_refresh_token_is_single_use_and_its_reuse_revokes_the_family() {
    let h = Harness::new().await;
    let users = &h.services().users;
    let first = h.register("hank").await;
    let parallel = users
        .sign_in("hank", "password-hank")
        .await
        .expect("second session");

    let second = users
        .refresh(&first.tokens.refresh_token)
        .await
        .expect("refresh");
    assert_eq!(second.user_id, first.user_id);
    assert_ne!(second.tokens.refresh_token, first.tokens.refresh_token);
    assert!(second.tokens.refresh_token_expires_at > h.user(first.user_id).await.user.created_at);
    let third = users
        .refresh(&second.tokens.refresh_token)
        .await
        .expect("refresh again");

    // Replaying `second` (already rotated) is theft: it fails and revokes `third` as well.
    let replay = users
        .refresh(&second.tokens.refresh_token)
        .await
        .expect_err("reuse");
    assert!(
        matches!(replay, UserError::InvalidRefreshToken),
        "{replay:?}"
    );
    assert_eq!(replay.code(), Code::Unauthenticated);
    assert!(matches!(
        users.refresh(&third.tokens.refresh_token).await,
        Err(UserError::InvalidRefreshToken)
    ));
    // The other session is another family.
    users
        .refresh(&parallel.tokens.refresh_token)
        .await
        .expect("other family unaffected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_succeed_at_most_once_and_revoke_the_family() {
    let h = Harness::new().await;
    let signed_in = h.register("ivy").await;
    let users = std::sync::Arc::clone(&h.services().users);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let users = std::sync::Arc::clone(&users);
        let token = signed_in.tokens.refresh_token.clone();
        tasks.push(tokio::spawn(async move { users.refresh(&token).await }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("join") {
            Ok(won) => winners.push(won),
            Err(UserError::InvalidRefreshToken) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one refresh may win");
    // The losers presented a rotated token, so the winner's new token is revoked too.
    assert!(matches!(
        users.refresh(&winners[0].tokens.refresh_token).await,
        Err(UserError::InvalidRefreshToken)
    ));
}

#[tokio::test]
async fn sign_out_revokes_only_its_own_family_and_ignores_unknown_tokens() {
    let h = Harness::new().await;
    let users = &h.services().users;
    let first = h.register("jack").await;
    let other = users
        .sign_in("jack", "password-jack")
        .await
        .expect("sign in");
    users
        .sign_out(&first.tokens.refresh_token)
        .await
        .expect("sign out");
    assert!(matches!(
        users.refresh(&first.tokens.refresh_token).await,
        Err(UserError::InvalidRefreshToken)
    ));
    users
        .sign_out(&first.tokens.refresh_token)
        .await
        .expect("idempotent");
    users.sign_out("never-issued").await.expect("unknown token");
    assert!(matches!(
        users.sign_out(&"x".repeat(300)).await,
        Err(UserError::InvalidRefreshToken)
    ));
    users
        .refresh(&other.tokens.refresh_token)
        .await
        .expect("other session still valid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_follows_of_the_same_pair_count_once() {
    let h = Harness::new().await;
    let kim = h.account("kim").await;
    let lee = h.account("lee").await;
    let graph = std::sync::Arc::clone(&h.services().graph);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let graph = std::sync::Arc::clone(&graph);
        tasks.push(tokio::spawn(
            async move { graph.follow(kim, lee.user_id).await },
        ));
    }
    for task in tasks {
        task.await.expect("join").expect("follow");
    }
    assert_eq!(h.counts(lee.user_id).await, (1, 0));
    assert_eq!(h.counts(kim.user_id).await, (0, 1));
    let followers = graph
        .followers(
            lee.user_id,
            None,
            &PageRequest::parse(None, None, "followers").expect("page"),
        )
        .await
        .expect("followers");
    assert_eq!(followers.items.len(), 1);

    // And concurrent unfollows bring both counters back to exactly zero.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let graph = std::sync::Arc::clone(&graph);
        tasks.push(tokio::spawn(async move {
            graph.unfollow(kim, lee.user_id).await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("unfollow");
    }
    assert_eq!(h.counts(lee.user_id).await, (0, 0));
    assert_eq!(h.counts(kim.user_id).await, (0, 0));
}

#[tokio::test]
async fn a_block_removes_follows_both_ways_and_forbids_new_ones_in_either_direction() {
    let h = Harness::new().await;
    let graph = &h.services().graph;
    let max = h.account("max").await;
    let nia = h.account("nia").await;
    graph.follow(max, nia.user_id).await.expect("follow");
    graph.follow(nia, max.user_id).await.expect("follow");
    graph.mute(max, nia.user_id).await.expect("mute");

    graph.block(max, nia.user_id).await.expect("block");
    let from_max = graph
        .relationship(max.user_id, nia.user_id)
        .await
        .expect("relationship");
    assert!(from_max.viewer_blocks && !from_max.blocks_viewer);
    assert!(!from_max.viewer_follows && !from_max.follows_viewer);
    assert!(from_max.viewer_mutes, "a block does not lift a mute");
    let from_nia = graph
        .relationship(nia.user_id, max.user_id)
        .await
        .expect("relationship");
    assert!(from_nia.blocks_viewer && !from_nia.viewer_blocks);
    assert_eq!(h.counts(max.user_id).await, (0, 0));
    assert_eq!(h.counts(nia.user_id).await, (0, 0));

    assert!(!graph
        .can_see(Some(max), nia.user_id)
        .await
        .expect("can see"));
    assert!(!graph
        .can_see(Some(nia), max.user_id)
        .await
        .expect("can see"));
    assert!(graph.can_see(None, max.user_id).await.expect("can see"));

    let blocked = graph.follow(nia, max.user_id).await.expect_err("blocked");
    assert!(matches!(blocked, UserError::NotFound), "{blocked:?}");
    let blocker = graph.follow(max, nia.user_id).await.expect_err("blocker");
    assert!(matches!(blocker, UserError::Forbidden(_)), "{blocker:?}");
    assert_eq!(blocker.code(), Code::Forbidden);
    let mute = graph
        .mute(nia, max.user_id)
        .await
        .expect_err("muting a blocker");
    assert!(matches!(mute, UserError::NotFound), "{mute:?}");
    assert_eq!(h.counts(max.user_id).await, (0, 0));

    graph.unblock(max, nia.user_id).await.expect("unblock");
    assert!(graph
        .can_see(Some(nia), max.user_id)
        .await
        .expect("can see"));
    let after = graph
        .relationship(max.user_id, nia.user_id)
        .await
        .expect("relationship");
    assert!(!after.viewer_follows && !after.follows_viewer && !after.viewer_blocks);
    graph.follow(nia, max.user_id).await.expect("follow again");
    assert_eq!(h.counts(max.user_id).await, (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follow_racing_a_block_never_survives_the_block() {
    let h = Harness::new().await;
    let graph = std::sync::Arc::clone(&h.services().graph);
    for round in 0..10 {
        let a = h.account(&format!("racer_a{round}")).await;
        let b = h.account(&format!("racer_b{round}")).await;
        let follower = {
            let graph = std::sync::Arc::clone(&graph);
            tokio::spawn(async move { graph.follow(a, b.user_id).await })
        };
        let blocker = {
            let graph = std::sync::Arc::clone(&graph);
            tokio::spawn(async move { graph.block(b, a.user_id).await })
        };
        blocker.await.expect("join").expect("block");
        // The follow either lost (NotFound) or happened before the block, which removed it.
        match follower.await.expect("join") {
            Ok(()) | Err(UserError::NotFound) => {}
            Err(other) => panic!("round {round}: unexpected {other:?}"),
        }
        let rel = graph
            .relationship(a.user_id, b.user_id)
            .await
            .expect("relationship");
        assert!(rel.blocks_viewer, "round {round}");
        assert!(
            !rel.viewer_follows,
            "round {round}: a follow crossed a block"
        );
        assert_eq!(h.counts(b.user_id).await, (0, 0), "round {round}");
        assert_eq!(h.counts(a.user_id).await, (0, 0), "round {round}");
    }
}

#[tokio::test]
async fn follower_pages_cover_every_follower_exactly_once_newest_first() {
    let h = Harness::new().await;
    let graph = &h.services().graph;
    let star = h.account("star").await;
    let mut fans = Vec::new();
    for i in 0..25 {
        let fan = h.account(&format!("fan{i:02}")).await;
        graph.follow(fan, star.user_id).await.expect("follow");
        fans.push(fan.user_id);
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let page = graph
            .followers(star.user_id, Some(star), &PageRequest { limit: 10, after })
            .await
            .expect("page");
        sizes.push(page.items.len());
        let last = page.items.last().map(|e| e.edge_id);
        seen.extend(page.items.into_iter().map(|e| e.user.user.id));
        if !page.has_next_page {
            break;
        }
        after = last;
    }
    assert_eq!(sizes, vec![10, 10, 5]);
    fans.reverse();
    assert_eq!(seen, fans, "newest follow first, each exactly once");

    // A viewer blocked by one of the fans does not see that fan in the list.
    let outsider = h.account("outsider").await;
    graph
        .block(Viewer { user_id: fans[0] }, outsider.user_id)
        .await
        .expect("block");
    let page = graph
        .followers(
            star.user_id,
            Some(outsider),
            &PageRequest {
                limit: 100,
                after: None,
            },
        )
        .await
        .expect("page");
    assert_eq!(page.items.len(), 24);
    assert!(page.items.iter().all(|e| e.user.user.id != fans[0]));
    assert!(!page.has_next_page);
}

#[tokio::test]
async fn profile_patches_leave_omitted_fields_alone_and_clear_the_avatar_with_an_explicit_none() {
    let h = Harness::new().await;
    let users = &h.services().users;
    let olga = h.account("olga").await;
    let set = users
        .update_profile(
            olga,
            Some(" Olga "),
            Some("Hello"),
            Some(Some("https://x.test/o.png")),
        )
        .await
        .expect("update");
    assert_eq!(set.user.display_name, "Olga");
    assert_eq!(set.user.bio, "Hello");
    assert_eq!(set.user.avatar_url.as_deref(), Some("https://x.test/o.png"));

    let untouched = users
        .update_profile(olga, None, None, None)
        .await
        .expect("no-op update");
    assert_eq!(untouched.user, set.user);

    let cleared = users
        .update_profile(olga, None, None, Some(None))
        .await
        .expect("clear avatar");
    assert_eq!(cleared.user.avatar_url, None);
    assert_eq!(cleared.user.display_name, "Olga");
    assert_eq!(cleared.user.bio, "Hello");

    let error = users
        .update_profile(olga, Some("New"), None, Some(Some("javascript:alert(1)")))
        .await
        .expect_err("bad url");
    assert!(matches!(error, UserError::InvalidInput(_)), "{error:?}");
    assert_eq!(h.user(olga.user_id).await.user.display_name, "Olga");

    // A viewer whose account does not exist cannot update anything.
    let ghost = Viewer {
        user_id: Id(123_456_789),
    };
    assert!(matches!(
        users.update_profile(ghost, Some("Ghost"), None, None).await,
        Err(UserError::NotFound)
    ));
}

#[tokio::test]
async fn graph_actions_on_oneself_are_invalid_and_on_unknown_accounts_not_found() {
    let h = Harness::new().await;
    let graph = &h.services().graph;
    let pat = h.account("pat").await;
    let unknown = Id(987_654_321);
    let self_follow = graph.follow(pat, pat.user_id).await.expect_err("self");
    assert!(
        matches!(self_follow, UserError::InvalidInput(_)),
        "{self_follow:?}"
    );
    assert!(matches!(
        graph.block(pat, pat.user_id).await,
        Err(UserError::InvalidInput(_))
    ));
    assert!(matches!(
        graph.mute(pat, pat.user_id).await,
        Err(UserError::InvalidInput(_))
    ));
    for result in [
        graph.follow(pat, unknown).await,
        graph.unfollow(pat, unknown).await,
        graph.block(pat, unknown).await,
        graph.unblock(pat, unknown).await,
        graph.mute(pat, unknown).await,
        graph.unmute(pat, unknown).await,
    ] {
        let error = result.expect_err("unknown account");
        assert!(matches!(error, UserError::NotFound), "{error:?}");
        assert_eq!(error.code(), Code::NotFound);
    }
    assert_eq!(h.counts(pat.user_id).await, (0, 0));
    // The relationship with oneself is all false.
    assert_eq!(
        graph.relationship(pat.user_id, pat.user_id).await.ok(),
        Some(nova_users::Relationship::default())
    );
}
