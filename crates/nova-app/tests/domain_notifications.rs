//! The notifications consumer under at-least-once delivery (fault F4 of the reliability plan:
//! zero duplicate effects): the same envelope delivered twice, and a batch delivered reordered
//! with duplicates, each give exactly one effect, because the notification write and the
//! durable processed record are one transaction. Also MESSAGE notifications from a hand-built
//! `MessageSent` (messaging is built elsewhere), off until the recipient turns them on.
//!
//! The app is built but not served, so no relay runs: the test is the only deliverer.

use std::sync::Arc;

use nova_app::testing::TestApp;
use nova_app::App;
use nova_core::{now_millis, Id, PageRequest, Viewer};
use nova_events::{DomainEvent, Envelope, EventHandler, Handled};
use nova_notifications::{Notification, NotificationKind, NotificationsHandler, PreferencesPatch};

struct Harness {
    app: App,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Harness {
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

    fn handler(&self) -> NotificationsHandler {
        NotificationsHandler(Arc::clone(&self.services().notifications))
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

    async fn notifications(&self, who: Viewer) -> Vec<Notification> {
        self.services()
            .notifications
            .list(
                who,
                &PageRequest {
                    limit: 100,
                    after: None,
                },
            )
            .await
            .expect("list")
            .items
    }

    fn liked(&self, event_id: i64, post: Id, author: Viewer, liker: Viewer) -> Envelope {
        Envelope::new(
            Id(event_id),
            now_millis(),
            DomainEvent::PostLiked {
                post_id: post,
                post_author_id: author.user_id,
                liker_id: liker.user_id,
            },
        )
    }
}

#[tokio::test]
async fn the_same_like_delivered_twice_notifies_once() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let post = h
        .services()
        .posts
        .create_post(
            alice,
            nova_posts::CreatePostInput {
                body: "hello",
                ..Default::default()
            },
        )
        .await
        .expect("post");
    let handler = h.handler();
    let event = h.liked(1_000_001, post.id, alice, bob);
    assert_eq!(
        handler.handle(&event).await.expect("first"),
        Handled::Applied
    );
    assert_eq!(
        handler.handle(&event).await.expect("second"),
        Handled::AlreadyApplied
    );
    let listed = h.notifications(alice).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, NotificationKind::Like);
    assert_eq!(listed[0].actor_count, 1);
    assert_eq!(listed[0].actor_ids, [bob.user_id]);
    assert_eq!(listed[0].post.as_ref().map(|p| p.id), Some(post.id));
    assert_eq!(
        h.services()
            .notifications
            .unread_count(alice)
            .await
            .expect("count"),
        1
    );
}

#[tokio::test]
async fn a_reordered_batch_with_duplicates_applies_each_event_once() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let likers = [
        h.account("bob").await,
        h.account("carol").await,
        h.account("dave").await,
    ];
    let post = h
        .services()
        .posts
        .create_post(
            alice,
            nova_posts::CreatePostInput {
                body: "hello",
                ..Default::default()
            },
        )
        .await
        .expect("post");
    let events: Vec<Envelope> = likers
        .iter()
        .enumerate()
        .map(|(i, liker)| h.liked(2_000_000 + i as i64, post.id, alice, *liker))
        .collect();
    let follow = Envelope::new(
        Id(2_000_010),
        now_millis(),
        DomainEvent::UserFollowed {
            follower_id: likers[0].user_id,
            followee_id: alice.user_id,
        },
    );
    // Newest first, then duplicates of everything, interleaved.
    let batch = [
        &events[2], &follow, &events[0], &events[2], &events[1], &events[0], &follow, &events[1],
    ];
    let handler = h.handler();
    let mut applied = 0;
    for event in batch {
        match handler.handle(event).await.expect("handle") {
            Handled::Applied => applied += 1,
            Handled::AlreadyApplied => {}
            Handled::Ignored => panic!("nothing here is ignored"),
        }
    }
    assert_eq!(applied, 4, "each distinct event applied exactly once");
    let listed = h.notifications(alice).await;
    assert_eq!(listed.len(), 2, "{listed:#?}");
    // The follow is the latest activity.
    assert_eq!(listed[0].kind, NotificationKind::Follow);
    assert_eq!(listed[0].actor_count, 1);
    let likes = &listed[1];
    assert_eq!(likes.kind, NotificationKind::Like);
    assert_eq!(likes.actor_count, 3);
    // Newest event first, whatever the delivery order.
    assert_eq!(
        likes.actor_ids,
        [likers[2].user_id, likers[1].user_id, likers[0].user_id]
    );
    assert_eq!(likes.sort_id, Id(2_000_002));
    assert_eq!(
        h.services()
            .notifications
            .unread_count(alice)
            .await
            .expect("count"),
        2
    );
}

#[tokio::test]
async fn messages_notify_only_when_turned_on_and_only_once() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let carol = h.account("carol").await;
    let handler = h.handler();
    let sent = |id: i64| {
        Envelope::new(
            Id(id),
            now_millis(),
            DomainEvent::MessageSent {
                conversation_id: Id(77),
                message_id: Id(id + 1),
                sender_id: bob.user_id,
                recipient_ids: vec![alice.user_id, carol.user_id],
            },
        )
    };
    // Off by default for both recipients.
    assert_eq!(
        handler.handle(&sent(3_000_000)).await.expect("handle"),
        Handled::Ignored
    );
    assert!(h.notifications(alice).await.is_empty());
    h.services()
        .notifications
        .update_preferences(
            alice,
            &PreferencesPatch {
                message: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("turn messages on");
    let second = sent(3_000_100);
    assert_eq!(
        handler.handle(&second).await.expect("handle"),
        Handled::Applied
    );
    assert_eq!(
        handler.handle(&second).await.expect("again"),
        Handled::AlreadyApplied
    );
    assert_eq!(
        handler.handle(&sent(3_000_200)).await.expect("handle"),
        Handled::Applied
    );
    let listed = h.notifications(alice).await;
    assert_eq!(listed.len(), 1, "messages of one conversation group");
    assert_eq!(listed[0].kind, NotificationKind::Message);
    assert_eq!(listed[0].target_id, Some(Id(77)));
    assert_eq!(listed[0].actor_ids, [bob.user_id]);
    assert_eq!(listed[0].actor_count, 1, "the same sender counts once");
    assert!(listed[0].post.is_none());
    assert!(
        h.notifications(carol).await.is_empty(),
        "carol kept them off"
    );
    assert!(h.notifications(bob).await.is_empty(), "never the sender");
}

/// F4, the storm: 40 likers' events go through the real consumer (its in-memory window bounded
/// to 16 entries), then 10 % of them are replayed in reverse order, plus replays older than
/// the window. No duplicate effect: the window absorbs the recent replays, the durable record
/// the old ones; and the window never holds more than its bound.
#[tokio::test]
async fn a_duplicate_storm_beyond_the_dedup_window_has_no_second_effect() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let post = h
        .services()
        .posts
        .create_post(
            alice,
            nova_posts::CreatePostInput {
                body: "storm",
                ..Default::default()
            },
        )
        .await
        .expect("post");
    let mut events = Vec::new();
    for i in 0..40 {
        let liker = h.account(&format!("liker{i}")).await;
        events.push(h.liked(2_000_000 + i, post.id, alice, liker));
    }
    let consumer = nova_bus::Consumer::new(
        Arc::new(h.handler()),
        nova_bus::DedupSettings {
            max_entries: 16,
            ttl: std::time::Duration::from_secs(3600),
        },
    );
    for event in &events {
        assert_eq!(
            consumer.deliver(event).await.expect("deliver"),
            nova_bus::Delivery::Processed
        );
    }
    // 10 % replayed, reordered: the last four (inside the window) and the first four (long
    // evicted from it), newest first.
    let replays: Vec<&Envelope> = events[36..].iter().chain(&events[..4]).rev().collect();
    for event in replays {
        assert_eq!(
            consumer.deliver(event).await.expect("replay"),
            nova_bus::Delivery::Deduplicated
        );
    }
    assert!(
        consumer.window_len() <= 16,
        "window {}",
        consumer.window_len()
    );
    let listed = h.notifications(alice).await;
    assert_eq!(listed.len(), 1, "one LIKE group");
    assert_eq!(listed[0].actor_count, 40, "each like counted once");
}

/// The batch path (`handle_batch`, one store call for the batch): a batch holding an event
/// applied before and an event twice applies each new event once and changes nothing else;
/// the same batch delivered again changes nothing at all.
#[tokio::test]
async fn a_batch_with_an_applied_event_and_a_duplicate_inside_has_no_second_effect() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let likers = [
        h.account("bob").await,
        h.account("carol").await,
        h.account("dave").await,
    ];
    let post = h
        .services()
        .posts
        .create_post(
            alice,
            nova_posts::CreatePostInput {
                body: "hello",
                ..Default::default()
            },
        )
        .await
        .expect("post");
    let handler = h.handler();
    let before = h.liked(3_000_000, post.id, alice, likers[0]);
    assert_eq!(
        handler.handle(&before).await.expect("first"),
        Handled::Applied
    );
    let carol = h.liked(3_000_001, post.id, alice, likers[1]);
    let dave = h.liked(3_000_002, post.id, alice, likers[2]);
    // Alice liking her own post notifies nobody.
    let own = h.liked(3_000_003, post.id, alice, alice);
    let batch = [before.clone(), carol.clone(), own, carol, dave];
    assert_eq!(
        handler.handle_batch(&batch).await.expect("batch"),
        [
            Handled::AlreadyApplied,
            Handled::Applied,
            Handled::Ignored,
            Handled::AlreadyApplied,
            Handled::Applied,
        ]
    );
    let check = |listed: Vec<Notification>| {
        assert_eq!(listed.len(), 1, "{listed:#?}");
        assert_eq!(listed[0].kind, NotificationKind::Like);
        assert_eq!(listed[0].actor_count, 3);
        assert_eq!(
            listed[0].actor_ids,
            [likers[2].user_id, likers[1].user_id, likers[0].user_id]
        );
        assert_eq!(listed[0].sort_id, Id(3_000_002));
    };
    check(h.notifications(alice).await);
    assert_eq!(
        handler.handle_batch(&batch).await.expect("again"),
        [
            Handled::AlreadyApplied,
            Handled::AlreadyApplied,
            Handled::Ignored,
            Handled::AlreadyApplied,
            Handled::AlreadyApplied,
        ]
    );
    check(h.notifications(alice).await);
    assert_eq!(
        h.services()
            .notifications
            .unread_count(alice)
            .await
            .expect("count"),
        1
    );
}

/// Grouping inside one batch (`handle_batch`) is what one-by-one delivery gives: an actor joins
/// an unread group from an earlier batch, an actor already in it counts once, a group the batch
/// starts is joined by the batch's later events, a read group is not joined (a new one starts),
/// and the rules use each pair's relationship (a blocked liker notifies nobody, the others in
/// the same batch do).
#[tokio::test]
async fn a_batch_groups_as_one_by_one_delivery_would() {
    let h = Harness::new().await;
    let alice = h.account("alice").await;
    let erin = h.account("erin").await;
    let bob = h.account("bob").await;
    let carol = h.account("carol").await;
    let dave = h.account("dave").await;
    let mut posts = Vec::new();
    for (author, body) in [(alice, "a"), (erin, "e"), (alice, "a2")] {
        posts.push(
            h.services()
                .posts
                .create_post(
                    author,
                    nova_posts::CreatePostInput {
                        body,
                        ..Default::default()
                    },
                )
                .await
                .expect("post")
                .id,
        );
    }
    let (alices, erins, alices_second) = (posts[0], posts[1], posts[2]);
    let handler = h.handler();
    // Earlier batch: bob's like starts alice's group; carol's like on alice's second post
    // starts a group that alice then reads.
    let earlier = [
        h.liked(4_000_000, alices, alice, bob),
        h.liked(4_000_001, alices_second, alice, carol),
    ];
    assert_eq!(
        handler.handle_batch(&earlier).await.expect("earlier"),
        [Handled::Applied, Handled::Applied]
    );
    let read = h
        .notifications(alice)
        .await
        .into_iter()
        .find(|n| n.post.as_ref().map(|p| p.id) == Some(alices_second))
        .expect("group of the second post");
    h.services()
        .notifications
        .mark_read(alice, Some(vec![read.id]))
        .await
        .expect("mark read");
    h.services()
        .graph
        .block(alice, dave.user_id)
        .await
        .expect("block");
    let batch = [
        h.liked(4_000_010, alices, alice, carol), // joins bob's unread group
        h.liked(4_000_011, alices, alice, bob),   // bob liked anew: counted once
        h.liked(4_000_012, erins, erin, bob),     // starts erin's group
        h.liked(4_000_013, alices, alice, dave),  // blocked by alice: nobody is told
        h.liked(4_000_014, alices_second, alice, bob), // the read group is not joined
        Envelope::new(
            Id(4_000_015),
            now_millis(),
            DomainEvent::UserFollowed {
                follower_id: carol.user_id,
                followee_id: alice.user_id,
            },
        ),
        h.liked(4_000_016, erins, erin, carol), // joins the group this batch started
    ];
    assert_eq!(
        handler.handle_batch(&batch).await.expect("batch"),
        [
            Handled::Applied,
            Handled::Applied,
            Handled::Applied,
            Handled::Ignored,
            Handled::Applied,
            Handled::Applied,
            Handled::Applied,
        ]
    );
    let alices_groups = h.notifications(alice).await;
    /// kind, target post, actor count, latest actors, read
    type Summary = (NotificationKind, Option<Id>, i64, Vec<Id>, bool);
    let summary: Vec<Summary> = alices_groups
        .iter()
        .map(|n| {
            (
                n.kind,
                n.post.as_ref().map(|p| p.id),
                n.actor_count,
                n.actor_ids.clone(),
                n.read,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                NotificationKind::Follow,
                None,
                1,
                vec![carol.user_id],
                false
            ),
            (
                NotificationKind::Like,
                Some(alices_second),
                1,
                vec![bob.user_id],
                false
            ),
            (
                NotificationKind::Like,
                Some(alices),
                2,
                vec![carol.user_id, bob.user_id],
                false
            ),
            (
                NotificationKind::Like,
                Some(alices_second),
                1,
                vec![carol.user_id],
                true
            ),
        ],
        "{alices_groups:#?}"
    );
    // Bob's repeat changed nothing, not even the group's place in the list.
    assert_eq!(alices_groups[2].sort_id, Id(4_000_010));
    let erins_groups = h.notifications(erin).await;
    assert_eq!(erins_groups.len(), 1, "{erins_groups:#?}");
    assert_eq!(erins_groups[0].actor_count, 2);
    assert_eq!(
        erins_groups[0].actor_ids,
        [carol.user_id, bob.user_id],
        "newest event first"
    );
    assert_eq!(erins_groups[0].sort_id, Id(4_000_016));
    assert_eq!(
        h.services()
            .notifications
            .unread_count(alice)
            .await
            .expect("count"),
        3
    );
}
