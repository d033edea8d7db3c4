DROP TABLE notification_preferences;
DROP TABLE notification_actors;
DROP TABLE notifications;
