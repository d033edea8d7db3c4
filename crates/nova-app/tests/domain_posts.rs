//! Domain rules of posts, exercised on a built app's services without HTTP: body rules,
//! idempotency, visibility (FOLLOWERS, blocks, mutes), ownership of edits and deletes, soft
//! deletes, counters, and keyset pages that stay stable while posts arrive.

use nova_app::testing::TestApp;
use nova_app::App;
use nova_core::{Code, Coded, Id, Page, PageRequest, Viewer};
use nova_posts::{CreatePostInput, Post, PostError, Visibility};

/// A built app on a temporary data directory (kept alive as long as the harness).
struct Harness {
    app: App,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
        // Builds are serialised: `nova_gateway::metrics_handle` races when two apps are built
        // at once before the process-wide recorder is installed.
        static BUILDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _guard = BUILDING.lock().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let app = App::build(&TestApp::test_settings(dir.path()))
            .await
            .expect("build app");
        Harness { app, _dir: dir }
    }

    fn services(&self) -> &nova_graphql::Services {
        self.app.services()
    }

    async fn account(&self, username: &str) -> Viewer {
        let signed_in = self
            .services()
            .users
            .register(
                username,
                &format!("{username}@example.test"),
                &format!("password-{username}"),
            )
            .await
            .expect("register");
        Viewer {
            user_id: signed_in.user_id,
        }
    }

    async fn post(&self, author: Viewer, body: &str) -> Post {
        self.create(
            author,
            CreatePostInput {
                body,
                ..Default::default()
            },
        )
        .await
        .expect("create post")
    }

    async fn create(&self, author: Viewer, input: CreatePostInput<'_>) -> Result<Post, PostError> {
        self.services().posts.create_post(author, input).await
    }

    async fn post_count(&self, who: Viewer) -> i64 {
        self.services()
            .users
            .get_user(who.user_id)
            .await
            .expect("get user")
            .expect("user exists")
            .post_count
    }

    async fn feed(&self, who: Viewer, page: &PageRequest) -> Page<Post> {
        self.services()
            .posts
            .home_feed(who, page)
            .await
            .expect("home feed")
    }

    async fn feed_bodies(&self, who: Viewer) -> Vec<String> {
        bodies(&self.feed(who, &first(100)).await)
    }

    async fn timeline_bodies(&self, author: Viewer, viewer: Option<Viewer>) -> Vec<String> {
        bodies(
            &self
                .services()
                .posts
                .author_posts(author.user_id, viewer, &first(100))
                .await
                .expect("author posts"),
        )
    }

    async fn reply_ids(&self, parent: Id, viewer: Option<Viewer>) -> Vec<Id> {
        ids(&self
            .services()
            .posts
            .replies(parent, viewer, &first(100))
            .await
            .expect("replies"))
    }

    async fn stats(&self, post: Id, viewer: Option<Viewer>) -> nova_posts::PostStats {
        self.services()
            .posts
            .stats(&[post], viewer)
            .await
            .expect("stats")
            .into_iter()
            .find(|(id, _)| *id == post)
            .map(|(_, stats)| stats)
            .expect("stats row")
    }
}

fn first(limit: u32) -> PageRequest {
    PageRequest { limit, after: None }
}

fn bodies(page: &Page<Post>) -> Vec<String> {
    page.items.iter().map(|p| p.body.clone()).collect()
}

fn ids(page: &Page<Post>) -> Vec<Id> {
    page.items.iter().map(|p| p.id).collect()
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, PostError>, code: Code) {
    match result {
        Ok(value) => panic!("expected {code}, got Ok({value:?})"),
        Err(error) => assert_eq!(error.code(), code, "{error:?}"),
    }
}

#[tokio::test]
async fn bodies_are_normalised_bounded_by_graphemes_and_never_blank() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;

    let post = h.post(alice, "cafe\u{301}").await;
    assert_eq!(post.body, "caf\u{e9}");
    assert_eq!(post.visibility, Visibility::Public);
    assert_eq!(post.reply_to_id, None);
    assert_eq!(post.edited_at, None);

    let long = h.post(alice, &"o\u{308}".repeat(500)).await;
    assert_eq!(long.body, "\u{f6}".repeat(500));

    for bad in [
        "".to_owned(),
        " \t\n ".to_owned(),
        "a".repeat(501),
        "o\u{308}".repeat(501),
        "nul\u{0}".to_owned(),
        "cr\r".to_owned(),
        // Within 500 graphemes but beyond the byte bound.
        format!("a{}", "\u{301}".repeat(5000)),
    ] {
        let result = h
            .create(
                alice,
                CreatePostInput {
                    body: &bad,
                    ..Default::default()
                },
            )
            .await;
        assert!(
            matches!(result, Err(PostError::InvalidInput(_))),
            "{bad:?}: {result:?}"
        );
    }
    let verbatim = "<img src=x onerror=alert(1)> '); DELETE FROM posts; --";
    assert_eq!(h.post(alice, verbatim).await.body, verbatim);
    assert_eq!(h.post_count(alice).await, 3);
}

#[tokio::test]
async fn idempotency_keys_return_the_first_post_conflict_on_other_content_and_are_per_author() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let input = |body| CreatePostInput {
        body,
        idempotency_key: Some("key-1"),
        ..Default::default()
    };
    let first = h.create(alice, input("hello")).await.expect("first");
    let retry = h.create(alice, input("hello")).await.expect("retry");
    assert_eq!(retry, first);
    assert_eq!(h.post_count(alice).await, 1);

    let conflict = h.create(alice, input("goodbye")).await;
    assert!(
        matches!(conflict, Err(PostError::IdempotencyConflict)),
        "{conflict:?}"
    );
    assert_code(conflict, Code::Conflict);
    assert_code(
        h.create(
            alice,
            CreatePostInput {
                visibility: Some(Visibility::Followers),
                ..input("hello")
            },
        )
        .await,
        Code::Conflict,
    );

    let bobs = h.create(bob, input("hello")).await.expect("bob's own key");
    assert_ne!(bobs.id, first.id);
    assert_eq!(bobs.author_id, bob.user_id);
    assert_eq!(h.post_count(alice).await, 1);
    assert_eq!(h.post_count(bob).await, 1);

    assert_code(
        h.create(
            alice,
            CreatePostInput {
                body: "x",
                idempotency_key: Some("no spaces allowed"),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidInput,
    );
}

#[tokio::test]
async fn an_idempotent_retry_after_an_edit_returns_the_post_but_other_content_conflicts() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let input = |body| CreatePostInput {
        body,
        idempotency_key: Some("edit-key"),
        ..Default::default()
    };
    let original = h.create(alice, input("draft")).await.expect("create");
    h.services()
        .posts
        .edit_post(alice, original.id, "final")
        .await
        .expect("edit");
    let retry = h.create(alice, input("draft")).await.expect("retry");
    assert_eq!(retry.id, original.id);
    assert_eq!(retry.body, "final");
    assert_code(h.create(alice, input("unrelated")).await, Code::Conflict);
    assert_eq!(h.post_count(alice).await, 1);
}

#[tokio::test]
async fn followers_posts_are_visible_to_the_author_and_followers_only() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let follower = h.account("follower").await;
    let stranger = h.account("stranger").await;
    h.services()
        .graph
        .follow(follower, alice.user_id)
        .await
        .expect("follow");
    let private = h
        .create(
            alice,
            CreatePostInput {
                body: "inner circle",
                visibility: Some(Visibility::Followers),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(private.visibility, Visibility::Followers);
    let posts = &h.services().posts;
    assert!(posts.get_post(Some(alice), private.id).await.is_ok());
    assert!(posts.get_post(Some(follower), private.id).await.is_ok());
    assert_code(
        posts.get_post(Some(stranger), private.id).await,
        Code::NotFound,
    );
    assert_code(posts.get_post(None, private.id).await, Code::NotFound);

    assert_eq!(h.feed_bodies(follower).await, ["inner circle"]);
    assert!(h.timeline_bodies(alice, Some(stranger)).await.is_empty());
    assert!(h.timeline_bodies(alice, None).await.is_empty());
    assert_eq!(
        h.timeline_bodies(alice, Some(follower)).await,
        ["inner circle"]
    );
    // Nor can the stranger reply, like or read its versions.
    assert_code(
        h.create(
            stranger,
            CreatePostInput {
                body: "let me in",
                reply_to: Some(private.id),
                ..Default::default()
            },
        )
        .await,
        Code::NotFound,
    );
    assert_code(posts.like(stranger, private.id).await, Code::NotFound);
    assert_code(
        posts.versions(Some(stranger), private.id, &first(10)).await,
        Code::NotFound,
    );
    assert_eq!(h.stats(private.id, Some(alice)).await.reply_count, 0);
    assert_eq!(h.stats(private.id, Some(alice)).await.like_count, 0);
    assert_eq!(h.post_count(stranger).await, 0);
}

#[tokio::test]
async fn blocks_hide_posts_both_ways_and_refuse_replies_and_likes_without_storing_them() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let graph = &h.services().graph;
    graph.follow(alice, bob.user_id).await.expect("follow");
    graph.follow(bob, alice.user_id).await.expect("follow");
    let alice_post = h.post(alice, "alice").await;
    let bob_post = h.post(bob, "bob").await;
    graph.block(alice, bob.user_id).await.expect("block");

    let posts = &h.services().posts;
    for (who, other, other_post) in [(alice, bob, &bob_post), (bob, alice, &alice_post)] {
        assert_code(
            posts.get_post(Some(who), other_post.id).await,
            Code::NotFound,
        );
        assert!(h.timeline_bodies(other, Some(who)).await.is_empty());
        assert_eq!(
            h.feed(who, &first(100)).await.items.len(),
            1,
            "own post only"
        );
        assert_code(
            h.create(
                who,
                CreatePostInput {
                    body: "reply",
                    reply_to: Some(other_post.id),
                    ..Default::default()
                },
            )
            .await,
            Code::NotFound,
        );
        assert_code(posts.like(who, other_post.id).await, Code::NotFound);
        // Nothing was stored.
        assert!(h.reply_ids(other_post.id, Some(other)).await.is_empty());
        let stats = h.stats(other_post.id, Some(other)).await;
        assert_eq!((stats.like_count, stats.reply_count), (0, 0));
        assert_eq!(h.post_count(who).await, 1);
    }
    // Anonymous readers and third parties still see both.
    assert_eq!(h.timeline_bodies(alice, None).await, ["alice"]);
    assert_eq!(h.timeline_bodies(bob, None).await, ["bob"]);
}

#[tokio::test]
async fn mutes_remove_an_account_from_the_home_feed_only() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let graph = &h.services().graph;
    graph.follow(alice, bob.user_id).await.expect("follow");
    let bob_post = h.post(bob, "noisy").await;
    h.post(alice, "mine").await;
    assert_eq!(h.feed_bodies(alice).await, ["mine", "noisy"]);
    graph.mute(alice, bob.user_id).await.expect("mute");
    assert_eq!(h.feed_bodies(alice).await, ["mine"]);
    assert_eq!(h.timeline_bodies(bob, Some(alice)).await, ["noisy"]);
    assert!(h
        .services()
        .posts
        .get_post(Some(alice), bob_post.id)
        .await
        .is_ok());
    graph.unmute(alice, bob.user_id).await.expect("unmute");
    assert_eq!(h.feed_bodies(alice).await, ["mine", "noisy"]);
}

#[tokio::test]
async fn only_the_author_may_edit_or_delete_and_edits_keep_versions() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let mallory = h.account("mallory").await;
    let posts = &h.services().posts;
    let post = h.post(alice, "v1").await;

    assert!(matches!(
        posts.edit_post(mallory, post.id, "pwned").await,
        Err(PostError::Forbidden(_))
    ));
    assert_code(posts.delete_post(mallory, post.id).await, Code::Forbidden);
    assert_eq!(
        posts
            .get_post(None, post.id)
            .await
            .expect("still there")
            .body,
        "v1"
    );

    let edited = posts.edit_post(alice, post.id, "v2").await.expect("edit");
    assert_eq!(edited.body, "v2");
    assert!(edited.edited_at.is_some());
    assert_eq!(edited.created_at, post.created_at);
    posts.edit_post(alice, post.id, "v3").await.expect("edit");
    let versions = posts
        .versions(None, post.id, &first(10))
        .await
        .expect("versions");
    let listed: Vec<(i64, &str)> = versions
        .items
        .iter()
        .map(|v| (v.version, v.body.as_str()))
        .collect();
    assert_eq!(listed, [(2, "v2"), (1, "v1")]);
    assert_eq!(versions.items[1].created_at, post.created_at);
    assert_eq!(versions.items[0].created_at, edited.edited_at.expect("set"));
    assert_code(
        posts.edit_post(alice, post.id, " ").await,
        Code::InvalidInput,
    );
    assert_eq!(h.post_count(alice).await, 1);
}

#[tokio::test]
async fn a_soft_deleted_post_is_absent_from_every_read_and_uncounted() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    h.services()
        .graph
        .follow(bob, alice.user_id)
        .await
        .expect("follow");
    let posts = &h.services().posts;
    let parent = h.post(alice, "parent").await;
    let reply = h
        .create(
            bob,
            CreatePostInput {
                body: "reply",
                reply_to: Some(parent.id),
                ..Default::default()
            },
        )
        .await
        .expect("reply");
    assert_eq!(reply.reply_to_id, Some(parent.id));
    assert_eq!(h.stats(parent.id, None).await.reply_count, 1);
    assert_eq!(h.reply_ids(parent.id, None).await, [reply.id]);

    posts
        .delete_post(bob, reply.id)
        .await
        .expect("delete reply");
    assert!(h.reply_ids(parent.id, None).await.is_empty());
    assert_eq!(h.stats(parent.id, None).await.reply_count, 0);
    assert_eq!(h.post_count(bob).await, 0);
    assert_code(posts.get_post(Some(bob), reply.id).await, Code::NotFound);

    posts.delete_post(alice, parent.id).await.expect("delete");
    assert_code(posts.get_post(Some(alice), parent.id).await, Code::NotFound);
    assert!(h.feed_bodies(alice).await.is_empty());
    assert!(h.feed_bodies(bob).await.is_empty());
    assert!(h.timeline_bodies(alice, None).await.is_empty());
    assert_eq!(h.post_count(alice).await, 0);
    // Deleting again is NotFound and does not count down twice.
    assert_code(posts.delete_post(alice, parent.id).await, Code::NotFound);
    assert_eq!(h.post_count(alice).await, 0);
}

#[tokio::test]
async fn likes_are_idempotent_and_counted_once_per_account() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let posts = &h.services().posts;
    let post = h.post(alice, "likeable").await;
    posts.like(bob, post.id).await.expect("like");
    posts.like(bob, post.id).await.expect("like again");
    let stats = h.stats(post.id, Some(bob)).await;
    assert_eq!((stats.like_count, stats.viewer_has_liked), (1, true));
    let stats = h.stats(post.id, Some(alice)).await;
    assert_eq!((stats.like_count, stats.viewer_has_liked), (1, false));
    posts.unlike(bob, post.id).await.expect("unlike");
    posts.unlike(bob, post.id).await.expect("unlike again");
    let stats = h.stats(post.id, Some(bob)).await;
    assert_eq!((stats.like_count, stats.viewer_has_liked), (0, false));
}

#[tokio::test]
async fn keyset_pages_neither_repeat_nor_skip_while_posts_arrive() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let mut originals = Vec::new();
    for i in 0..10 {
        originals.push(h.post(alice, &format!("old {i}")).await.id);
    }
    originals.reverse();

    let mut seen = Vec::new();
    let mut page = PageRequest::parse(Some(4), None, "feed").expect("page request");
    loop {
        let found = h.feed(alice, &page).await;
        seen.extend(ids(&found));
        // Something new arrives between every two page loads.
        h.post(alice, "interloper").await;
        if !found.has_next_page {
            break;
        }
        let last = found.items.last().expect("a full page has items").id;
        let cursor = nova_core::Cursor::new(last).encode("feed");
        page = PageRequest::parse(Some(4), Some(&cursor), "feed").expect("page request");
    }
    assert_eq!(seen, originals);

    // The cursor of one list is refused by another, and limits are bounded.
    let cursor = nova_core::Cursor::new(originals[0]).encode("feed");
    assert!(PageRequest::parse(Some(4), Some(&cursor), "replies").is_err());
    assert!(PageRequest::parse(Some(101), None, "feed").is_err());
    assert!(PageRequest::parse(Some(-1), None, "feed").is_err());
    assert!(PageRequest::parse(Some(100), None, "feed").is_ok());
}

#[tokio::test]
async fn replies_list_oldest_first_and_page_forward() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let parent = h.post(alice, "thread").await;
    let mut replies = Vec::new();
    for i in 0..5 {
        let who = if i % 2 == 0 { bob } else { alice };
        let body = format!("r{i}");
        replies.push(
            h.create(
                who,
                CreatePostInput {
                    body: &body,
                    reply_to: Some(parent.id),
                    ..Default::default()
                },
            )
            .await
            .expect("reply")
            .id,
        );
    }
    let posts = &h.services().posts;
    let page1 = posts
        .replies(parent.id, None, &first(3))
        .await
        .expect("replies");
    assert_eq!(ids(&page1), replies[0..3]);
    assert!(page1.has_next_page);
    let page2 = posts
        .replies(
            parent.id,
            None,
            &PageRequest {
                limit: 3,
                after: Some(replies[2]),
            },
        )
        .await
        .expect("replies");
    assert_eq!(ids(&page2), replies[3..5]);
    assert!(!page2.has_next_page);
    assert_eq!(h.stats(parent.id, None).await.reply_count, 5);
}
