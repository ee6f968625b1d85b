"""RealTimeOrder's Kubernetes operator: EventTopic, NotificationQueue and WorkerAutoscaler."""
