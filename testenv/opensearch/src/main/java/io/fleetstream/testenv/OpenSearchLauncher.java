package io.fleetstream.testenv;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.geo.GeoModulePlugin;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * Starts one OpenSearch node from jars on the classpath, for fleetstream's integration tests.
 *
 * <p>The regular distribution loads modules from folders, each in its own class loader, after the
 * bootstrap checks and under a security manager. This launcher skips all of that: it hands the
 * plugin classes straight to {@link Node}'s protected constructor (the one OpenSearch's own
 * integration test framework uses). Settings come from {@code <path.home>/config/opensearch.yml},
 * logging from {@code <path.home>/config/log4j2.properties}; {@code path.home} is the system
 * property {@code opensearch.path.home}. The node stops on SIGTERM (shutdown hook).
 */
public final class OpenSearchLauncher {

    /** The plugins a fleetstream node runs with (modules of the standard distribution). */
    static final List<Class<? extends Plugin>> PLUGINS = List.of(
            Netty4Plugin.class,
            GeoModulePlugin.class,
            CommonAnalysisPlugin.class,
            MapperExtrasPlugin.class,
            PainlessPlugin.class,
            ReindexPlugin.class);

    /** Node's constructor with classpath plugins is protected. */
    static final class ClasspathNode extends Node {
        ClasspathNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }

    private OpenSearchLauncher() {}

    public static void main(String[] args) throws Exception {
        String home = System.getProperty("opensearch.path.home");
        if (home == null || home.isEmpty()) {
            System.err.println("set -Dopensearch.path.home=<dir> (holding config/opensearch.yml)");
            System.exit(2);
        }
        Path homePath = Path.of(home).toAbsolutePath();
        Path config = homePath.resolve("config");
        Files.createDirectories(homePath.resolve("plugins"));
        Files.createDirectories(homePath.resolve("modules"));

        LogConfigurator.registerErrorListener();
        Settings input = Settings.builder().put("path.home", homePath.toString()).build();
        Environment environment =
                InternalSettingsPreparer.prepareEnvironment(input, Map.of(), config, () -> "fleetstream");
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(environment.settings()));
        LogConfigurator.configure(environment);

        Node node = new ClasspathNode(environment, PLUGINS);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "fleetstream-opensearch-shutdown"));
        node.start();
        System.out.println("fleetstream: opensearch node started");
        // The node's own threads may all be daemons: keep the JVM alive until shutdown.
        stopped.await();
    }
}
