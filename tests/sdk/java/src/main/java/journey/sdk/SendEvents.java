package journey.sdk;

import com.segment.analytics.Analytics;
import com.segment.analytics.messages.IdentifyMessage;
import com.segment.analytics.messages.TrackMessage;
import java.util.Map;

/** Sends an identify and two tracks with Segment's Java SDK, the way a backend would. */
public final class SendEvents {
  private SendEvents() {}

  public static void main(String[] args) throws InterruptedException {
    String endpoint = args[0];
    String writeKey = args[1];
    String userId = args[2];
    Analytics analytics = Analytics.builder(writeKey).endpoint(endpoint).flushQueueSize(10).build();
    analytics.enqueue(IdentifyMessage.builder().userId(userId).messageId(userId + "-identify")
        .traits(Map.of("email", " " + userId + "@Example.COM ", "plan", "plus")));
    analytics.enqueue(TrackMessage.builder("Order Completed").userId(userId)
        .messageId(userId + "-order").properties(Map.of("total", 42.5, "currency", "EUR")));
    analytics.enqueue(TrackMessage.builder("Product Viewed").userId(userId)
        .messageId(userId + "-view").properties(Map.of("product_id", "p-1")));
    analytics.flush();
    analytics.shutdown();  // blocks until the queue is sent
  }
}
