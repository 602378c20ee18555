import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A plain (not transactional) idempotent producer with acks=all: each line of {@code --file} as one
 * record to {@code --topic}, key = the line's number (from 0), value = the line, at most
 * {@code --rate} lines a second (default: as fast as it can). Retries until
 * {@code --delivery-timeout-ms} (default 120000), so a broker going away loses and duplicates
 * nothing. Prints {@code ACKED n} whenever the count of acknowledged lines passes a multiple of
 * {@code --every} (default 100) and at the end; exits 0 once every line is acknowledged, 1 if one
 * failed (with the error on stderr).
 */
public final class LineProducer {
    public static void main(String[] argv) throws Exception {
        Args a = new Args(argv);
        String topic = a.str("topic");
        List<String> lines = Files.readAllLines(Paths.get(a.str("file")));
        double rate = Double.parseDouble(a.str("rate", "0"));
        int every = a.num("every", 100);

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, a.str("bootstrap"));
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, a.str("delivery-timeout-ms", "120000"));
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "line-producer");
        AtomicLong acked = new AtomicLong();
        AtomicReference<Exception> failed = new AtomicReference<>();
        long start = System.nanoTime();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < lines.size() && failed.get() == null; i++) {
                if (rate > 0) {
                    long due = start + (long) (i / rate * 1e9);
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                    }
                }
                producer.send(new ProducerRecord<>(topic, String.valueOf(i), lines.get(i)), (m, e) -> {
                    if (e != null) {
                        failed.compareAndSet(null, e);
                        return;
                    }
                    long n = acked.incrementAndGet();
                    if (n % every == 0) {
                        System.out.println("ACKED\t" + n);
                        System.out.flush();
                    }
                });
            }
            producer.flush();
        }
        if (failed.get() != null) {
            failed.get().printStackTrace();
            System.exit(1);
        }
        System.out.println("ACKED\t" + acked.get());
        System.out.println("DONE");
    }
}
