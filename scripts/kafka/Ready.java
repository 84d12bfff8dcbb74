// Exits 0 once the broker at args[0] answers metadata (cluster description and topic list) and
// prints its cluster id; exits 1 if it does not within args[1] seconds. Compiled by kafka.sh fetch.
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class Ready {
    public static void main(String[] args) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        Exception last = null;
        try (Admin admin = Admin.create(props)) {
            while (System.nanoTime() < deadline) {
                try {
                    var cluster = admin.describeCluster();
                    int brokers = cluster.nodes().get(5, TimeUnit.SECONDS).size();
                    String clusterId = cluster.clusterId().get(5, TimeUnit.SECONDS);
                    admin.listTopics().names().get(5, TimeUnit.SECONDS);
                    if (brokers > 0) {
                        System.out.println(clusterId);
                        System.exit(0);
                    }
                } catch (Exception e) {
                    last = e;
                }
                Thread.sleep(200);
            }
        }
        System.err.println("broker not ready at " + args[0] + ": " + last);
        System.exit(1);
    }
}
